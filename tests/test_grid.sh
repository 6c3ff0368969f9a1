#!/bin/sh
# test_grid.sh OCCKD_TRAIN OCCKD_REPORT JOB WORKDIR
# The whole grid end to end on 2 ranks: exit 0, results.h5 readable by
# h5dump with a /summary row for every cell (teachers twice), the report
# table and CSV, a rerun that skips every finished cell, and the warning for
# more threads per rank than the rank's cores.
set -u
train=$1 report=$2 job=$3 work=$4
. "$(dirname "$0")/e2e.sh"
e2e_start test_grid "$work"
mpirun -np 2 "$train" --set job.output=out "$job" >run.log 2>&1 || { cat run.log; fail "occkd_train failed"; }
tail -n 3 run.log
h5dump -d /summary out/results.h5 >summary.txt || fail "h5dump cannot read /summary"
for task in expression age; do
    for method in teacher '"teacher (occluded)"' student kd triplet kd+triplet kd-triplet concat; do
        m=$(echo "$method" | tr -d '"')
        grep -q "\"$m\"" summary.txt || fail "/summary lacks method $m"
    done
    grep -q "\"$task\"" summary.txt || fail "/summary lacks task $task"
done
rows=$(grep -c '"vgg_face"' summary.txt)
[ "$rows" -eq 16 ] || fail "/summary has $rows rows, expected 16 (2 tasks x (5 methods + teacher occluded + 2 fusions))"
"$report" out/results.h5 >report.txt || fail "occkd_report failed"
cat report.txt
grep -q "teacher (occluded)" report.txt || fail "the report lacks the teacher (occluded) column"
"$report" --csv out/results.h5 >report.csv || fail "occkd_report --csv failed"
[ "$(grep -c ",vgg_face," report.csv)" -eq 16 ] || fail "the CSV does not have 16 rows"
# a rerun has nothing left to train
mpirun -np 2 "$train" --set job.output=out "$job" >rerun.log 2>&1 || { cat rerun.log; fail "the rerun failed"; }
grep -q "training:" rerun.log && fail "the rerun trained a finished cell again"
h5dump -d /summary out/results.h5 >summary2.txt
diff summary.txt summary2.txt >/dev/null || fail "the rerun changed /summary"
# more threads than the cores a rank is bound to: said, not silently slow
mpirun -np 2 --bind-to core "$train" --set job.output=out --set parallel.threads=64 "$job" >threads.log 2>&1 ||
    { cat threads.log; fail "the run with 64 threads per rank failed"; }
grep -q "warning: parallel.threads = 64, but rank 0 may run on 1 core(s) only" threads.log ||
    { cat threads.log; fail "no warning for 64 threads on a rank bound to one core"; }
echo "test_grid: passed"
