#!/bin/sh
# Runs occkd_bench on one network at a small size and checks that it prints
# each figure, as a positive finite number. Usage: bench_smoke.sh BENCH MODEL ARGS...
set -u
bench=$1
shift
out=$("$bench" "$@" 2>&1)
status=$?
echo "$out"
[ $status -eq 0 ] || { echo "bench_smoke: occkd_bench exited $status"; exit 1; }
for key in params train_images_per_s train_gflops_per_s sgemm_gflops_per_s peak_memory_mb; do
    value=$(echo "$out" | sed -n "s/^$key: //p")
    case "$value" in
        ''|*[!0-9.]*|.*) echo "bench_smoke: '$key' missing or not a positive number: '$value'"; exit 1 ;;
    esac
    awk "BEGIN { exit !($value > 0) }" || { echo "bench_smoke: $key is $value, expected > 0"; exit 1; }
done
# the per-layer table names the first and the last layer
echo "$out" | grep -Eq '^conv1(_1)? ' || { echo "bench_smoke: per-layer table lacks the first convolution"; exit 1; }
echo "$out" | grep -Eq '^(fc8|fc) ' || { echo "bench_smoke: per-layer table lacks the classifier"; exit 1; }
exit 0
