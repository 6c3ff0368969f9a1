#!/bin/sh
# Runs a comm/ failure mode under mpirun and checks that the job ends with a
# non-zero status and prints the expected message.
# Usage: comm_watchdog.sh <mpiexec> <ranks> <test_comm> <mode> <regex>
set -u
mpiexec=$1 np=$2 prog=$3 mode=$4 regex=$5
out=$("$mpiexec" --allow-run-as-root --oversubscribe -np "$np" "$prog" "$mode" 2>&1)
status=$?
printf '%s\n' "$out"
if [ "$status" -eq 0 ]; then
    echo "comm_watchdog: '$mode' with $np ranks exited 0; expected a non-zero status" >&2
    exit 1
fi
if ! printf '%s\n' "$out" | grep -Eq "$regex"; then
    echo "comm_watchdog: '$mode' with $np ranks did not print /$regex/" >&2
    exit 1
fi
echo "comm_watchdog: '$mode' with $np ranks ended with status $status and the expected message"
