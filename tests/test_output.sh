#!/bin/sh
# test_output.sh OCCKD_TRAIN JOB WORKDIR
#
# The output folder is checked before anything trains, and held by one run:
#   - an output path that is an existing file (or lies below one) is refused
#     by --check (status 2) and by a run before any cell trains (status 1);
#   - a second run into the folder of a running one is refused with a message
#     naming the holder (host, process, start), and the first run goes on;
#   - a lock left by a killed run (its process gone) is taken over with a
#     message; a finished run leaves no lock behind.
set -u
train=$1 job=$2 work=$3
. "$(dirname "$0")/e2e.sh"
e2e_start test_output "$work"
run() { # run OUTPUT LOG
    mpirun -np 2 "$train" --set "job.output=$1" --set job.cache=cache "$job" >"$2" 2>&1
}

# 1. an output path that is a file
touch afile
"$train" --check --set job.output=afile "$job" >check.log 2>&1
status=$?
[ $status -eq 2 ] || { cat check.log; fail "--check with a file as output exited $status, expected 2"; }
grep -q "job.output: afile exists and is not a folder" check.log || { cat check.log; fail "--check: no message"; }
"$train" --check --set job.output=afile/below "$job" >check2.log 2>&1 && fail "--check accepted an output below a file"
grep -q "afile is not a folder" check2.log || { cat check2.log; fail "--check: no message for a path below a file"; }
run afile file.log && fail "a run into a file as output succeeded"
grep -q "afile exists and is not a folder" file.log || { cat file.log; fail "the run did not say why"; }
grep -q "training:" file.log && { cat file.log; fail "cells trained before the output was found unusable"; }

# 2. a second run while the first holds the folder: the first waits at step 3
# of a cell (fault hook) until it is signalled
OCCKD_FAULT_AT_STEP=3 OCCKD_FAULT_ACTION=pause OCCKD_FAULT_MARK=pause.mark \
    mpirun -np 2 "$train" --set job.output=out --set job.cache=cache "$job" >first.log 2>&1 &
pid=$!
for _ in $(seq 1200); do
    [ -e pause.mark ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
[ -e pause.mark ] || { kill -KILL $pid 2>/dev/null; cat first.log; fail "the first run never reached step 3"; }
[ -f out/.occkd-lock ] || { kill -KILL $pid; fail "the running job holds no lock file"; }
run out second.log
status=$?
[ $status -eq 1 ] || { kill -KILL $pid; cat second.log; fail "the second run exited $status, expected 1"; }
grep -q "is in use by another run: process [0-9]* on host $(hostname)" second.log ||
    { kill -KILL $pid; cat second.log; fail "the refusal does not name the holder"; }
grep -q "training:" second.log && { kill -KILL $pid; fail "the second run trained"; }
kill -USR1 $pid
wait $pid
status=$?
[ $status -eq 0 ] || { cat first.log; fail "the first run, signalled, exited $status"; }
grep -q "stopped by a signal" first.log || { cat first.log; fail "the first run did not stop on SIGUSR1"; }
[ -e out/.occkd-lock ] && fail "a stopped run left its lock behind"

# 3. a lock whose process is gone (as after kill -9) is taken over
sleep 30 &
dead=$!
kill -KILL $dead
wait $dead 2>/dev/null
echo "host=$(hostname) pid=$dead started=2026-01-01T00:00:00Z slurm_job=-" >out/.occkd-lock
run out third.log || { cat third.log; fail "the run with a stale lock failed"; }
grep -q "taking over the lock .* of process $dead .*its process is gone" third.log ||
    { cat third.log; fail "no message about the stale lock"; }
grep -q "resuming at step" third.log || { cat third.log; fail "the rerun did not resume the stopped cell"; }
[ -f out/results.h5 ] || fail "no results.h5"
[ -e out/.occkd-lock ] && fail "a finished run left its lock behind"
echo "test_output: passed"
