#!/bin/sh
# test_blas_kernel_ranks.sh MPIEXEC TEST_BLAS_KERNEL_MPI
#
# The OpenBLAS kernel check rank by rank under mpirun (2 and 3 ranks): with
# the test switch OCCKD_BLAS_TREAT_AS_FALLBACK=1 every rank runs itself again
# before MPI_Init (its pid starts twice), and reports the best core for this CPU
# (computed here from /proc/cpuinfo); a user's OPENBLAS_CORETYPE=Prescott is
# kept on every rank, each starting once.
set -u
mpiexec=$1 prog=$2
fail() { echo "test_blas_kernel_ranks: $*"; exit 1; }
. "$(dirname "$0")/blas_best_core.sh"
[ -n "$best" ] || { echo "test_blas_kernel_ranks: this CPU has no AVX: nothing to correct"; exit 0; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# count PATTERN OUTPUT: the rank lines matching PATTERN
count() { echo "$2" | grep -c "^rank [0-9]* pid [0-9]*: $1"; }
# starts N OUTPUT: 0 when each rank's pid started N times
starts() {
    for pid in $(echo "$2" | sed -n 's/^rank [0-9]* pid \([0-9]*\):.*/\1/p'); do
        [ "$(echo "$2" | grep -c "^start pid $pid\$")" -eq "$1" ] || { echo "pid $pid did not start $1 time(s)"; return 1; }
    done
}
for np in 2 3; do
    out=$(env -u OPENBLAS_CORETYPE -u OCCKD_BLAS_CORRECTED_FROM OCCKD_BLAS_TREAT_AS_FALLBACK=1 \
          "$mpiexec" -np $np -x OCCKD_BLAS_TREAT_AS_FALLBACK "$prog" 2>&1) || { echo "$out"; fail "the $np-rank run failed"; }
    echo "$out"
    n=$(count "OpenBLAS [0-9.]* core $best (corrected by occkd: OpenBLAS chose " "$out")
    [ "$n" -eq $np ] || fail "$n of $np ranks ran again with $best"
    starts 2 "$out" || fail "a rank did not run itself again in its own process"
done
out=$(env -u OCCKD_BLAS_TREAT_AS_FALLBACK -u OCCKD_BLAS_CORRECTED_FROM OPENBLAS_CORETYPE=Prescott \
      "$mpiexec" -np 2 -x OPENBLAS_CORETYPE "$prog" 2>&1) || { echo "$out"; fail "the run with Prescott failed"; }
echo "$out"
n=$(count "OpenBLAS [0-9.]* core Prescott (OPENBLAS_CORETYPE=Prescott set by the user)" "$out")
[ "$n" -eq 2 ] || fail "$n of 2 ranks kept the user's Prescott"
starts 1 "$out" || fail "a rank ran itself again despite the user's OPENBLAS_CORETYPE"
[ "$(echo "$out" | grep -c "warning: OPENBLAS_CORETYPE=Prescott set by the user.*this CPU allows $best")" -eq 2 ] ||
    fail "not every rank warned that this CPU allows $best"
echo "test_blas_kernel_ranks: every rank corrected to $best (2 and 3 ranks); a user's Prescott kept on each"
