#!/bin/sh
# Runs occkd_databench at a small size and checks that it prints each figure
# as a positive number. Usage: databench_smoke.sh DATABENCH ARGS...
set -u
bench=$1
shift
out=$("$bench" "$@" 2>&1)
status=$?
echo "$out"
[ $status -eq 0 ] || { echo "databench_smoke: occkd_databench exited $status"; exit 1; }
for key in loader_images_per_s loader_images_per_s_without_resize train_images_per_s_streamed \
    train_images_per_s_in_memory streamed_over_in_memory; do
    value=$(echo "$out" | sed -n "s/^$key \([0-9.]*\).*/\1/p")
    case "$value" in
        ''|*[!0-9.]*|.*) echo "databench_smoke: '$key' missing or not a positive number: '$value'"; exit 1 ;;
    esac
    awk "BEGIN { exit !($value > 0) }" || { echo "databench_smoke: $key is $value, expected > 0"; exit 1; }
done
echo "$out" | grep -q "^resize_share_of_step " || { echo "databench_smoke: no resize share"; exit 1; }
exit 0
