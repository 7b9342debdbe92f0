#!/bin/sh
# `make bench`: every speed and memory figure the issues ask for, side by
# side in one run. Arguments: the build directory and the source directory.
set -eu
build=$1
src=$2
export OPENBLAS_NUM_THREADS=1
secs=${BENCH_SECONDS:-3}

echo "== one rank: training step vs sgemm of the same shapes"
"$build/tests/bench_step" "$secs"
