#!/bin/sh
# Installs the Debian 12 packages occkd needs, only those that are missing.
# Safe to run again. Uses sudo when not run as root.
set -eu
packages="build-essential cmake pkg-config libopenmpi-dev openmpi-bin libopenblas-dev libhdf5-dev hdf5-tools
libconfig-dev zlib1g-dev libstb-dev dataset-fashion-mnist libplplot-dev plplot-driver-cairo libdnnl-dev"
# `jobs/setup-debian.sh --tests`: also what the test suite's fuzz stage needs
[ "${1:-}" = --tests ] && packages="$packages clang libfuzzer-14-dev"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "setup: all packages present"
    exit 0
fi
echo "setup: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
