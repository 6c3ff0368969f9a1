#!/bin/sh
# The quick start: installs what is missing (Debian 12), builds occkd, trains
# the whole teacher/student grid of jobs/quickstart.cfg on the built-in
# synthetic faces with 2 MPI ranks, and prints the paper-style table.
# Rerunning it continues an interrupted run and skips finished cells.
#   jobs/quickstart.sh [extra occkd_train options, e.g. --set train.epochs=2]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs/setup-debian.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
as_root=""
if [ "$(id -u)" -eq 0 ]; then
    as_root="--allow-run-as-root" # Open MPI refuses root otherwise
fi
# shellcheck disable=SC2086
mpirun $as_root --oversubscribe -np 2 build/occkd_train "$@" jobs/quickstart.cfg
build/occkd_report runs/quickstart/results.h5
build/occkd_report --plot runs/quickstart/curves.png runs/quickstart/results.h5 >/dev/null
echo "training curves: runs/quickstart/curves.png"
