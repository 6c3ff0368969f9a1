#!/bin/sh
# test_elastic_step.sh OCCKD_TRAIN OCCKD_REPORT JOB WORKDIR
#
# The step after an elastic resume. The job checkpoints after every step.
# On 2 ranks the teacher cell is killed at step K+1 (the checkpoint of step
# K stays); that output is resumed on 1 rank and, in a copy, on 4 ranks,
# each killed at step K+2, which leaves the checkpoint of step K+1. Its
# weights and batch-norm statistics must agree with those of an
# uninterrupted 2-rank run after step K+1 to within float rounding (h5diff,
# absolute difference DELTA), while the checkpoint of step K differs from
# them by more than DELTA (the comparison can tell one step). Then the
# 4-rank copy finishes the grid, and every cell must be done.
set -u
train=$1 report=$2 job=$3 work=$4
K=5 DELTA=2e-6
. "$(dirname "$0")/e2e.sh"
e2e_start test_elastic_step "$work"
run() { # run RANKS OUTPUT LOG [env assignments...]
    np=$1 out=$2 log=$3
    shift 3
    env "$@" mpirun -np "$np" "$train" --set "job.output=$out" --set "job.cache=cache" "$job" >"$log" 2>&1
}
kill_at() { # kill_at STEP RANKS OUTPUT LOG: runs until the group leader reaches STEP (before its checkpoint)
    step=$1
    shift
    rm -f mark
    run "$@" OCCKD_FAULT_AT_STEP="$step" OCCKD_FAULT_ACTION=kill OCCKD_FAULT_MARK=mark OCCKD_FAULT_LEADER=1 &&
        fail "the run on $1 rank(s) of $2 survived its fault at step $step"
    grep -q "killed at step $step" "$3" || { cat "$3"; fail "the fault at step $step did not fire ($3)"; }
}
ckpt() { find "$1" -path '*checkpoints*' -name 'teacher*.h5' | head -1; }
# step_of FILE: the step a checkpoint holds
step_of() { h5dump -a /step "$1" | sed -n 's/^ *(0): \([0-9]*\).*/\1/p'; }
same() { # same A B: /params and /state within DELTA
    h5diff -d "$DELTA" "$1" "$2" /params /params >diff.txt 2>&1 &&
        h5diff -d "$DELTA" "$1" "$2" /state /state >>diff.txt 2>&1
}

kill_at $((K + 2)) 2 ref ref.log
ref=$(ckpt ref)
[ -n "$ref" ] && [ "$(step_of "$ref")" = $((K + 1)) ] || fail "the reference checkpoint is not of step $((K + 1)): '$ref'"

kill_at $((K + 1)) 2 el el.log
at_k=$(ckpt el)
[ -n "$at_k" ] && [ "$(step_of "$at_k")" = "$K" ] || fail "the interrupted run left no checkpoint of step $K: '$at_k'"
same "$ref" "$at_k" && fail "the checkpoints of steps $K and $((K + 1)) agree within $DELTA: the comparison cannot tell one step"
cp "$at_k" step_k.h5
cp -r el el4

for np in 1 4; do
    out=el; [ "$np" = 4 ] && out=el4
    kill_at $((K + 2)) "$np" "$out" "resume$np.log"
    grep -q "written by a group of 2 rank(s); resuming on $np" "resume$np.log" ||
        { cat "resume$np.log"; fail "$np rank(s) did not resume the 2-rank checkpoint"; }
    got=$(ckpt "$out")
    [ "$(step_of "$got")" = $((K + 1)) ] || fail "the $np-rank resume left no checkpoint of step $((K + 1))"
    same "$ref" "$got" || { head -40 diff.txt; fail "after step $((K + 1)), $np rank(s) resuming a 2-rank checkpoint differ from the uninterrupted run by more than $DELTA"; }
    echo "test_elastic_step: 2 -> $np ranks: step $((K + 1)) agrees with the uninterrupted 2-rank run within $DELTA"
done

run 4 el4 finish.log || { cat finish.log; fail "the 4-rank run did not finish the grid"; }
"$report" --csv el4/results.h5 >el4.csv || fail "occkd_report --csv failed"
[ "$(grep -c ',done$' el4.csv)" -ge 2 ] || { cat el4.csv; fail "not every cell finished"; }
grep -v ',done$' el4.csv | grep -qv '^task' && { cat el4.csv; fail "a cell is not done"; }
echo "test_elastic_step: the grid finished on 4 ranks with every cell done"
