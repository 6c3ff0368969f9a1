#!/bin/sh
# ferplus-small-time.sh [RANKS] [WORKDIR]: how long an epoch of
# jobs/ferplus-small.cfg takes on this machine, without the FER+ files.
#
# The job is rewritten into a stand-in of the same geometry: synthetic
# faces (48 px grey, 8 expression classes) instead of fer2013.csv, the same
# network, batch, optimiser, augmentation, occlusion and distillation
# settings, every method for one epoch, no fusions. It trains on RANKS ranks
# (default 2) and prints, for each method, the training images per second of
# its last progress line and the time an epoch of FER+'s 28,709 training
# faces would take at that rate (the majority rule keeps about 25,000 of
# them, so real epochs are a little shorter; evaluation comes on top). Needs
# build/occkd_train (tests/run.sh or jobs/quickstart.sh builds it).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
np=${1:-2}
work=${2:-$src/runs/ferplus-small-time}
train=$src/build/occkd_train
[ -x "$train" ] || { echo "ferplus-small-time: build occkd first (tests/run.sh)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
rm -rf "$work"
mkdir -p "$work"
# 6,000 synthetic faces: 4,200 for training (val 0.1, test 0.2), 65 steps of 64
awk -v out="$work/out" '
    /path = "\/data\/ferplus"/ || /labels = "majority"/ || /on_bad_sample/ { next }
    /source = "ferplus"/ { print "      source = \"synth\"; count = 6000;"; swapped++; next }
    /^  output = / { print "  output = \"" out "\";"; next }
    /^  epochs = / { print "  epochs = 1;"; next }
    /^(overrides|fusions) = \(/ { skip = 1; next }
    skip && /^\);/ { skip = 0; next }
    skip { next }
    { print }
    END { if (swapped != 1) exit 1 }' "$src/jobs/ferplus-small.cfg" >"$work/job.cfg" ||
    { echo "ferplus-small-time: jobs/ferplus-small.cfg no longer has the lines this script rewrites" >&2; exit 2; }
"$train" --check "$work/job.cfg" >"$work/check.log" 2>&1 || { cat "$work/check.log" >&2; exit 2; }
start=$(date +%s)
mpirun -np "$np" "$train" "$work/job.cfg" >"$work/train.log" 2>&1 ||
    { tail -n 20 "$work/train.log" >&2; echo "ferplus-small-time: training failed" >&2; exit 1; }
end=$(date +%s)
head -n 1 "$work/train.log"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
# progress lines: [task/model/method] epoch 1/1 step S/N loss ... X img/s ...
awk -v np="$np" '
    /^\[.*\] epoch [0-9]+\/[0-9]+ step / {
        cell = $1; gsub(/[\[\]]/, "", cell); n = split(cell, p, "/"); m = p[n]
        for (i = 2; i <= NF; i++) if ($i == "img/s") rate[m] = $(i - 1)
        if (!(m in seen)) { seen[m] = 1; order[++k] = m }
    }
    END {
        printf "%-12s %10s %22s\n", "method", "img/s", "FER+ epoch (28,709)"
        for (i = 1; i <= k; i++) {
            m = order[i]; s = 28709 / rate[m]
            printf "%-12s %10.1f %16dm %02ds\n", m, rate[m], int(s / 60), int(s) % 60
        }
        printf "(%d rank(s); the stand-in: synthetic 48 px grey faces in the geometry of jobs/ferplus-small.cfg)\n", np
    }' "$work/train.log"
echo "whole stand-in run: $((end - start)) s"
