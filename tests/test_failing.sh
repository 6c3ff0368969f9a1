#!/bin/sh
# test_failing.sh OCCKD_TRAIN OCCKD_REPORT JOB WORKDIR
# A grid where the age teacher diverges: the run exits 1, the failed cell
# carries its message (step and first non-finite layer), its students are
# skipped, and the expression cells still finish.
set -u
train=$1 report=$2 job=$3 work=$4
. "$(dirname "$0")/e2e.sh"
e2e_start test_failing "$work"
mpirun -np 2 "$train" --set job.output=out "$job" >run.log 2>&1
status=$?
cat run.log | grep -E "failed|skipped|non-finite"
[ $status -eq 1 ] || fail "exit status $status, expected 1"
grep -q "non-finite loss at step" run.log || fail "no message naming the step of the non-finite loss"
"$report" --csv out/results.h5 >r.csv || fail "occkd_report failed"
cat r.csv
st() { awk -F, -v t="$1" -v m="$2" '$1 == t && $3 == m { print $8 }' r.csv; }
[ "$(st age teacher)" = failed ] || fail "the age teacher is not marked failed"
for m in student kd triplet kd+triplet kd-triplet; do
    [ "$(st age $m)" = skipped ] || fail "age/$m is '$(st age $m)', expected skipped"
    [ "$(st expression $m)" = done ] || fail "expression/$m is '$(st expression $m)', expected done"
done
h5dump -a /age/vgg_face/teacher/seed-1/message out/results.h5 | grep -q "non-finite" ||
    fail "results.h5 does not keep the failure message"
# a rerun tries the failed cell again (the rest is finished) and fails alike
mpirun -np 2 "$train" --set job.output=out "$job" >rerun.log 2>&1
status=$?
[ $status -eq 1 ] || fail "the rerun exited $status, expected 1"
grep -q "\[age/vgg_face/teacher\] training:" rerun.log || fail "the rerun did not try the failed teacher again"
grep -q "\[expression/vgg_face/.*\] training:" rerun.log && fail "the rerun trained a finished cell again"
echo "test_failing: passed"
