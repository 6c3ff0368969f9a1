#!/bin/sh
# test_elastic.sh OCCKD_TRAIN OCCKD_REPORT JOB WORKDIR
#
# A checkpoint written by one rank count resumes on another: the job (one
# rank group) is killed inside a checkpoint write on 2 ranks (the first
# cell's checkpoint of step 4 stays), resumed on 1 rank and killed after a
# cell, then finished on 4 ranks. The 1-rank run must say it continues a
# 2-rank checkpoint, every cell must finish, and the results must stay close
# to an uninterrupted 2-rank run's (the arithmetic agrees to float rounding,
# so test accuracies may move by a few faces, never by a broken resume's
# amount).
set -u
train=$1 report=$2 job=$3 work=$4
. "$(dirname "$0")/e2e.sh"
e2e_start test_elastic "$work"
run() { # run RANKS OUTPUT LOG [env assignments...]
    np=$1 out=$2 log=$3
    shift 3
    env "$@" mpirun -np "$np" "$train" --set "job.output=$out" --set "job.cache=cache" --set parallel.groups=1 \
        "$job" >"$log" 2>&1
}
run 2 ref ref.log || { cat ref.log; fail "the uninterrupted run failed"; }
run 2 el kill2.log OCCKD_FAULT_KILL_COMMIT=5 && fail "the 2-rank run survived its fault injection"
grep -q "killed before renaming" kill2.log || { cat kill2.log; fail "the commit fault did not fire"; }
run 1 el kill1.log OCCKD_FAULT_KILL_AFTER_CELL=2 && fail "the 1-rank run survived its fault injection"
grep -q "written by a group of 2 rank(s); resuming on 1" kill1.log ||
    { cat kill1.log; fail "1 rank did not resume the 2-rank checkpoint"; }
run 4 el finish.log || { cat finish.log; fail "the 4-rank run failed"; }
# the values, row by row: accuracies within 0.05, MAE within half a year
"$report" --csv ref/results.h5 >ref.csv && "$report" --csv el/results.h5 >el.csv || fail "occkd_report --csv failed"
[ "$(wc -l <ref.csv)" -eq "$(wc -l <el.csv)" ] || fail "the two runs have different rows"
[ "$(grep -c ',done$' el.csv)" -eq "$(grep -c ',done$' ref.csv)" ] || fail "not every cell finished"
paste -d, ref.csv el.csv | awk -F, 'NR > 1 {
    tol = ($5 == "mae") ? 0.5 : 0.05; d = $6 - $14; if (d < 0) d = -d;
    if ($1 != $9 || $3 != $11 || d > tol) { print "row " NR ": " $1 "/" $3 " " $6 " vs " $14; bad = 1 } }
    END { exit bad }' || fail "/summary values moved more than float rounding can explain"
echo "test_elastic: 2 -> 1 -> 4 ranks, every cell finished, every value within tolerance of the 2-rank run"
