#!/bin/sh
# test_stream.sh OCCKD_TRAIN JOB WORKDIR
#
# Streaming the data from the cache changes no number: the job runs with the
# images streamed (the default) and again with data.in_memory = true; the
# /summary tables, every cell's test predictions and every model must be
# equal bit for bit (h5diff without tolerance). The job has two tasks with
# data sets of their own on two groups of one rank: each group's log must show
# that it loaded only the data of the task it trains, and released it.
# results.h5 /job must record each rank's peak memory and cache bytes read.
set -u
train=$1 job=$2 work=$3
. "$(dirname "$0")/e2e.sh"
e2e_start test_stream "$work"
sed 's/channels = 1;/channels = 1; in_memory = true;/' "$job" >in-memory.cfg
[ "$(grep -c "channels = 1; in_memory = true;" in-memory.cfg)" -eq 2 ] || fail "could not write the in-memory job"
mpirun -np 2 "$train" --set job.output=streamed --set job.cache=cache "$job" >streamed.log 2>&1 ||
    { cat streamed.log; fail "the streamed run failed"; }
mpirun -np 2 "$train" --set job.output=memory --set job.cache=cache in-memory.cfg >memory.log 2>&1 ||
    { cat memory.log; fail "the in-memory run failed"; }

# each group loads only its own task's data set
for g in 0 1; do
    n=$(grep -c "group $g: loading data for task" streamed.log)
    [ "$n" -eq 1 ] || { cat streamed.log; fail "group $g loaded $n data sets, expected exactly 1"; }
    grep -q "group $g: released the data of task" streamed.log || fail "group $g never released its data"
done
t0=$(sed -n 's/.*group 0: loading data for task \([a-z]*\).*/\1/p' streamed.log)
t1=$(sed -n 's/.*group 1: loading data for task \([a-z]*\).*/\1/p' streamed.log)
[ -n "$t0" ] && [ -n "$t1" ] && [ "$t0" != "$t1" ] || fail "groups loaded tasks '$t0' and '$t1', expected one each"
echo "group 0 loaded only $t0, group 1 only $t1"

# the same numbers, bit for bit
h5diff streamed/results.h5 memory/results.h5 /summary /summary >diff.txt 2>&1 || { cat diff.txt; fail "/summary differs"; }
n=0
for f in streamed/cells/*/*/*.h5; do
    g=memory/${f#streamed/}
    h5diff "$f" "$g" /test/predictions /test/predictions >diff.txt 2>&1 || { cat diff.txt; fail "$g predictions differ"; }
    n=$((n + 1))
done
for f in streamed/models/*/*/*.h5; do
    g=memory/${f#streamed/}
    h5diff "$f" "$g" /params /params >diff.txt 2>&1 || { cat diff.txt; fail "$g weights differ"; }
done
[ "$n" -ge 8 ] || fail "only $n cells compared"

# what the run cost is recorded and printed
grep -q "peak memory per rank (VmHWM):" streamed.log || fail "no peak memory line at the end of the run"
h5dump -d /job/peak_rss_bytes streamed/results.h5 >peak.txt || fail "no /job/peak_rss_bytes"
grep -q "( 2 )" peak.txt || { cat peak.txt; fail "/job/peak_rss_bytes should hold 2 ranks"; }
h5dump -a /job/data_bytes_read_total streamed/results.h5 >bytes.txt || fail "no /job data_bytes_read_total"
read_total=$(sed -n 's/^ *(0): \([0-9]*\).*/\1/p' bytes.txt | head -n 1)
[ "${read_total:-0}" -gt 0 ] || { cat bytes.txt; fail "the streamed run read no bytes from its caches"; }
echo "test_stream: $n cells equal streamed and in memory; streamed run read $read_total bytes from the caches"
