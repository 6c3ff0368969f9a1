#!/bin/sh
# expect_fail.sh REGEX COMMAND... : passes when COMMAND exits non-zero and its
# output (stdout and stderr) matches the extended regular expression REGEX.
# ctest's timeout catches a command that hangs instead of failing.
set -u
regex=$1
shift
start=$(date +%s)
out=$("$@" 2>&1)
status=$?
end=$(date +%s)
echo "$out"
echo "expect_fail: exit status $status after $((end - start)) s"
if [ $status -eq 0 ]; then
    echo "expect_fail: the command succeeded, a failure was expected"
    exit 1
fi
if ! printf '%s\n' "$out" | grep -Eq -- "$regex"; then
    echo "expect_fail: output does not match '$regex'"
    exit 1
fi
exit 0
