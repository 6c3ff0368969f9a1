#!/bin/sh
# test_blas_kernel.sh OCCKD_BENCH OCCKD_TRAIN JOB WORKDIR
#
# The OpenBLAS kernel check: a user's own OPENBLAS_CORETYPE is kept and
# reported (with a warning when the CPU allows faster kernels); with the test
# switch OCCKD_BLAS_TREAT_AS_FALLBACK=1 occkd treats OpenBLAS's choice as a
# fallback and runs itself again with the best core for this CPU, computed
# here from /proc/cpuinfo the same way; under mpirun too, where the kernels
# also land in results.h5 /job.
set -u
bench=$1 train=$2 job=$3 work=$4
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
fail() { echo "test_blas_kernel: $*"; exit 1; }
. "$(dirname "$0")/blas_best_core.sh"
small="--model vgg_f --input 64 --width 0.25 --fc 128 --batch 4 --classes 7 --steps 2 --warmup 1 --threads 1"
# shellcheck disable=SC2086
env -u OCCKD_BLAS_TREAT_AS_FALLBACK OPENBLAS_CORETYPE=Prescott "$bench" $small >user.txt 2>&1 || { cat user.txt; fail "occkd_bench failed"; }
grep -q "^blas_core: OpenBLAS [0-9.]* core Prescott (OPENBLAS_CORETYPE=Prescott set by the user)" user.txt ||
    { cat user.txt; fail "the user's OPENBLAS_CORETYPE=Prescott is not kept and reported"; }
if [ -n "$best" ]; then
    grep -q "warning: OPENBLAS_CORETYPE=Prescott set by the user.*this CPU allows $best" user.txt ||
        { cat user.txt; fail "no warning that this CPU allows $best"; }
fi
[ -n "$best" ] || { echo "test_blas_kernel: this CPU has no AVX: nothing to correct"; exit 0; }
# shellcheck disable=SC2086
env -u OPENBLAS_CORETYPE OCCKD_BLAS_TREAT_AS_FALLBACK=1 "$bench" $small >forced.txt 2>&1 || { cat forced.txt; fail "occkd_bench failed"; }
grep -q "^blas_core: OpenBLAS [0-9.]* core $best (corrected by occkd: OpenBLAS chose " forced.txt ||
    { cat forced.txt; fail "the test switch did not make occkd run again with $best"; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
env -u OPENBLAS_CORETYPE OCCKD_BLAS_TREAT_AS_FALLBACK=1 mpirun -np 2 -x OCCKD_BLAS_TREAT_AS_FALLBACK "$train" \
    --set job.output=out --set train.epochs=1 "$job" >mpi.log 2>&1 || { cat mpi.log; fail "the MPI run failed"; }
grep -q "OpenBLAS [0-9.]* core $best (corrected by occkd" mpi.log || { cat mpi.log; fail "under mpirun the kernels were not corrected"; }
h5dump -a /job/blas_kernels out/results.h5 >job.txt 2>&1 || fail "no /job blas_kernels attribute"
grep -q "OpenBLAS [0-9.]* core $best (corrected by occkd" job.txt || { cat job.txt; fail "results.h5 /job does not record the kernels"; }
echo "test_blas_kernel: kept a user's Prescott with a warning; corrected to $best (occkd_bench and 2 MPI ranks)"
