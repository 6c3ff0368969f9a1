#!/bin/sh
# test_job_keys.sh PROGRAM README [--write]
#
# The key reference of README (jobs/README.md) is generated from the key
# tables of trainer/job_keys.c: each group's table stands between the lines
# "<!-- keys <group> begin -->" and "<!-- keys <group> end -->". PROGRAM
# (tests/test_job_keys) prints those regions; this script fails when the
# README's regions differ from them, and with --write replaces them:
#
#   cmake --build build --target test_job_keys &&
#       tests/test_job_keys.sh build/tests/test_job_keys jobs/README.md --write
set -u
prog=$1 readme=$2 mode=${3:-}
gen=$(mktemp) || exit 1
trap 'rm -f "$gen" "$gen.new"' EXIT
"$prog" > "$gen" || { echo "test_job_keys.sh: $prog failed"; exit 1; }
if [ "$mode" = --write ]; then
    awk -v gen="$gen" '
        function group(line) { sub(/^<!-- keys /, "", line); sub(/ (begin|end) -->$/, "", line); return line }
        BEGIN {
            while ((getline l < gen) > 0) {
                if (l ~ /^<!-- keys .* begin -->$/) { g = group(l); order[++n] = g }
                block[g] = block[g] l "\n"
            }
        }
        /^<!-- keys .* begin -->$/ {
            g = group($0)
            if (!(g in block)) { print "no key table named " g > "/dev/stderr"; bad = 1 }
            printf "%s", block[g]; done[g] = 1; skip = 1; next
        }
        skip && /^<!-- keys .* end -->$/ { skip = 0; next }
        skip { next }
        { print }
        END {
            for (i = 1; i <= n; i++)
                if (!(order[i] in done)) { print "the README has no region for " order[i] > "/dev/stderr"; bad = 1 }
            exit bad
        }' "$readme" > "$gen.new" || exit 1
    cat "$gen.new" > "$readme"
    echo "test_job_keys.sh: $readme written"
    exit 0
fi
if awk '/^<!-- keys .* begin -->$/ { on = 1 } on { print } /^<!-- keys .* end -->$/ { on = 0 }' "$readme" |
    diff -u "$gen" - ; then
    echo "test_job_keys.sh: the key reference of $readme matches the key tables"
    exit 0
fi
echo "test_job_keys.sh: $readme's key reference differs from the key tables (lines with - are the tables')."
echo "Regenerate it: tests/test_job_keys.sh <build>/tests/test_job_keys $readme --write"
exit 1
