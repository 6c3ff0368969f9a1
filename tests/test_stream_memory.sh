#!/bin/sh
# test_stream_memory.sh OCCKD_TRAIN JOB WORKDIR
#
# Data memory does not grow with the data set: the job's decoded cache
# (20,000 faces of 128 x 128 x 3 = 983 MB) is built and trained on for one
# epoch on 2 ranks; every rank's peak resident memory (VmHWM, as results.h5
# /job/peak_rss_bytes records it), network, MPI and libraries included, must
# stay under a quarter of the cache's size. Holding the images in memory, as
# occkd did before it streamed them, needs more than the whole cache per rank.
set -u
train=$1 job=$2 work=$3
. "$(dirname "$0")/e2e.sh"
e2e_start test_stream_memory "$work"
mpirun -np 2 "$train" --set job.output=out --set job.cache=cache "$job" >run.log 2>&1 || { cat run.log; fail "the run failed"; }
grep "peak memory" run.log
cache_bytes=$(du -b cache/*.h5 | awk '{s += $1} END {print s}')
bound=$((cache_bytes / 4))
[ "$cache_bytes" -gt 900000000 ] || fail "the cache holds only $cache_bytes bytes; expected about 983 MB"
h5dump -d /job/peak_rss_bytes out/results.h5 >peak.txt || fail "no /job/peak_rss_bytes in results.h5"
peaks=$(sed -n 's/^ *(0): //p' peak.txt | tr -d ',')
[ -n "$peaks" ] || { cat peak.txt; fail "cannot read the peak memory of the ranks"; }
n=0
for p in $peaks; do
    [ "$p" -gt 10000000 ] || fail "rank $n: peak memory $p bytes is implausibly small"
    [ "$p" -lt "$bound" ] || fail "rank $n: peak memory $p bytes is not below a quarter of the cache ($bound of $cache_bytes)"
    n=$((n + 1))
done
[ "$n" -eq 2 ] || fail "$n ranks recorded, expected 2"
rm -rf cache
echo "test_stream_memory: cache $cache_bytes bytes; peak memory per rank $peaks bytes, each below $bound"
