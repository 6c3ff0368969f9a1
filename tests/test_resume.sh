#!/bin/sh
# test_resume.sh OCCKD_TRAIN JOB WORKDIR
#
# Kill-and-resume: the job runs once uninterrupted; then again, killed with
# SIGKILL at several points (inside a checkpoint write, between two cells,
# in the middle of training steps) and restarted each time until it
# finishes; then once more stopped by SIGUSR1 (what Slurm sends before a time
# limit) and restarted. The final results.h5 numbers, every cell's test
# predictions and every trained model must equal the uninterrupted run's, bit
# for bit (h5diff without tolerance).
set -u
train=$1 job=$2 work=$3
. "$(dirname "$0")/e2e.sh"
e2e_start test_resume "$work"
run() { # run OUTPUT LOG [env assignments...]
    out=$1 log=$2
    shift 2
    env "$@" mpirun -np 2 "$train" --set "job.output=$out" --set "job.cache=cache" "$job" >"$log" 2>&1
}

run ref ref.log || { cat ref.log; fail "the uninterrupted run failed"; }
[ -f ref/results.h5 ] || fail "no ref/results.h5"

# killed inside a checkpoint write (after the temporary file, before the rename)
run killed killed-commit.log OCCKD_FAULT_KILL_COMMIT=5 && fail "the run survived its fault injection (commit 5)"
grep -q "killed before renaming" killed-commit.log || { cat killed-commit.log; fail "the commit fault did not fire"; }
ls killed/checkpoints/*/*/*.tmp >/dev/null 2>&1 && echo "a torn temporary file is left behind, as expected"
# killed between two cells; the commit fault above left the first cell's
# checkpoint of step 4 (every_steps = 4), so this run must resume from it
run killed killed-cell.log OCCKD_FAULT_KILL_AFTER_CELL=2 && fail "the run survived its fault injection (after cell 2)"
grep -q "killed after cell" killed-cell.log || { cat killed-cell.log; fail "the cell fault did not fire"; }
grep -q "resuming at step" killed-cell.log || { cat killed-cell.log; fail "no cell resumed after the commit fault"; }
# killed in the middle of training steps: the first rank at step 6 of a cell
# (after the checkpoint of step 4) kills itself, so steps 5 and 6 are redone
rm -f kill.mark usr1.mark
run killed killed-steps.log OCCKD_FAULT_AT_STEP=6 OCCKD_FAULT_ACTION=kill OCCKD_FAULT_MARK=kill.mark &&
    fail "the run survived its fault injection (killed at step 6)"
grep -q "killed at step 6" killed-steps.log || { cat killed-steps.log; fail "the step fault did not fire"; }
# stopped by SIGUSR1 through mpirun (forwarded to every rank) while a rank
# waits at step 3 of a cell: checkpoint, exit 0
env OCCKD_FAULT_AT_STEP=3 OCCKD_FAULT_ACTION=pause OCCKD_FAULT_MARK=usr1.mark \
    mpirun -np 2 "$train" --set job.output=killed --set job.cache=cache "$job" >killed-usr1.log 2>&1 &
pid=$!
for _ in $(seq 1200); do
    [ -e usr1.mark ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
[ -e usr1.mark ] || { kill -KILL $pid 2>/dev/null; cat killed-usr1.log; fail "no cell reached step 3 to be signalled"; }
kill -USR1 $pid
wait $pid
status=$?
grep -q "stopped by a signal" killed-usr1.log || { cat killed-usr1.log; fail "SIGUSR1 did not stop the run"; }
[ $status -eq 0 ] || { cat killed-usr1.log; fail "a run stopped by SIGUSR1 exited $status, expected 0"; }
echo "SIGUSR1: checkpointed and stopped with status 0"
# and finish
run killed killed.log || { cat killed.log; fail "the resumed run failed"; }

n=0
h5diff -c ref/results.h5 killed/results.h5 /summary /summary >diff.txt 2>&1 || { cat diff.txt; fail "/summary differs"; }
for f in ref/cells/*/*/*.h5; do
    g=killed/${f#ref/}
    for d in /test/predictions /test/labels /test/probabilities; do
        h5ls "$f$d" >/dev/null 2>&1 || continue
        h5diff -c "$f" "$g" "$d" "$d" >diff.txt 2>&1 || { cat diff.txt; fail "$g $d differs"; }
    done
    n=$((n + 1))
done
for f in ref/models/*/*/*.h5; do
    g=killed/${f#ref/}
    h5diff -c "$f" "$g" /params /params >diff.txt 2>&1 || { cat diff.txt; fail "$g weights differ"; }
    if h5ls "$f/state" >/dev/null 2>&1; then
        h5diff -c "$f" "$g" /state /state >diff.txt 2>&1 || { cat diff.txt; fail "$g batch-norm statistics differ"; }
    fi
done
[ $n -gt 0 ] || fail "no cell results compared"
echo "test_resume: $n cells and every model equal to the uninterrupted run"
