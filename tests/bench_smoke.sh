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
# --batchnorm and --fc-layers reach the network
case " $* " in
*" --batchnorm "*)
    echo "$out" | grep -q '^model: .* batchnorm 1 ' || { echo "bench_smoke: --batchnorm not in the model line"; exit 1; }
    echo "$out" | grep -Eq '^[a-z0-9_.]+ +batchnorm ' || { echo "bench_smoke: --batchnorm gave no batch-norm layer"; exit 1; } ;;
esac
case " $* " in
*" --fc-layers 1 "*)
    echo "$out" | grep -q '^model: .* fc_layers 1 ' || { echo "bench_smoke: --fc-layers 1 not in the model line"; exit 1; }
    echo "$out" | grep -Eq '^fc7 ' && { echo "bench_smoke: --fc-layers 1 still has a second hidden layer (fc7)"; exit 1; } ;;
esac
exit 0
