#!/bin/sh
# Installs what is missing, builds occkd (optimised, and a second build with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs the whole test suite
# with ctest. Usage: tests/run.sh [extra ctest arguments]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs/setup-debian.sh --tests
# Open MPI refuses root without these; tests may start more ranks than cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
ncpu=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$ncpu"
(cd build && ctest --output-on-failure "$@")

# The sanitizer build runs the unit tests (label "unit"); MPI's own
# allocations are not ours to report, so leak detection is off.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DOCCKD_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$ncpu"
(cd build-asan && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -L unit "$@")

# The libFuzzer targets (Debian's clang, ASan + UBSan), a few seconds each
# from their seed corpora (label "fuzz"; tests/fuzz/README.md runs them for
# 10^6 inputs).
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOCCKD_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$ncpu" --target fuzz
(cd build-fuzz && ctest --output-on-failure -L fuzz "$@")
