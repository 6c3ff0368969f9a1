#!/bin/sh
# check_bad_jobs.sh OCCKD_TRAIN DIR : `occkd_train --check` on every broken
# job file of DIR must exit 2 and print the message its first line expects
# (`# expect: <text>`), with the `# set: key=value` lines as --set options.
set -u
train=$1 dir=$2
n=0 bad=0
for f in "$dir"/*.cfg; do
    expect=$(sed -n 's/^# expect: //p' "$f" | head -n 1)
    sets=$(sed -n 's/^# set: \(.*\)$/--set=\1/p' "$f")
    # shellcheck disable=SC2086
    out=$("$train" --check $sets "$f" 2>&1)
    status=$?
    n=$((n + 1))
    if [ $status -ne 2 ]; then
        echo "FAIL $f: exit status $status, expected 2"; echo "$out"; bad=$((bad + 1))
    elif ! printf '%s\n' "$out" | grep -qF -- "$expect"; then
        echo "FAIL $f: expected '$expect' in:"; echo "$out"; bad=$((bad + 1))
    fi
done
[ $n -ge 15 ] || { echo "only $n broken job files"; exit 1; }
echo "check_bad_jobs: $n broken job files, $bad failures"
[ $bad -eq 0 ]
