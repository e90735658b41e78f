#!/usr/bin/env bash
# The whole test suite on a fresh machine: install what is missing, build everything, run ctest
# (unit, multi-rank under mpirun, end to end).
#   launch/test.sh [ctest args...]            e.g. launch/test.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/launch/setup.sh" "$root/build"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Tests run side by side; one intra-op thread each avoids oversubscribing the cores.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cd "$root/build"
ctest --output-on-failure -j "$(nproc)" "$@"
