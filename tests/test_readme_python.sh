#!/bin/sh
# test_readme_python.sh README RESULTS: runs the README's h5py example on a
# results.h5 (the one the grid_tiny test writes). Skipped (77) without h5py.
set -u
readme=$1 results=$2
py=""
for p in /usr/bin/python3 python3; do
    "$p" -c "import h5py" 2>/dev/null && { py=$p; break; }
done
[ -n "$py" ] || { echo "python3-h5py is not installed; skipped"; exit 77; }
[ -f "$results" ] || { echo "no $results (run grid_tiny first)"; exit 1; }
code=$(awk '/^```python$/ { on = 1; next } /^```$/ { on = 0 } on' "$readme" |
    sed "s|runs/quickstart/results.h5|$results|")
[ -n "$code" ] || { echo "no python example in $readme"; exit 1; }
out=$(printf '%s\n' "$code" | "$py") || { echo "the README example failed"; exit 1; }
echo "$out"
echo "$out" | grep -q "teacher" || { echo "the example printed no teacher row"; exit 1; }
