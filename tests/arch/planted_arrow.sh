#!/usr/bin/env bash
# The arrow check must fail, naming the file and line, on a tree with one upward include.
set -euo pipefail
python=$1; check=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/parallel" "$tmp/models" "$tmp/data"
printf '#pragma once\n' >"$tmp/models/transformer.h"
printf '#include "common/error.h"\n#include "models/transformer.h"\n' >"$tmp/parallel/mesh.cpp"
printf '#include "trainer/loop.h"\n' >"$tmp/data/packing.cpp"
if out=$("$python" "$check" "$tmp" 2>&1); then echo "the check passed a tree with upward includes: $out"; exit 1; fi
grep -q '^parallel/mesh.cpp:2: .*parallel/ may not include models/' <<<"$out" || { echo "no line for parallel/mesh.cpp:2 in: $out"; exit 1; }
grep -q '^data/packing.cpp:1: .*data/ may not include trainer/' <<<"$out" || { echo "no line for data/packing.cpp:1 in: $out"; exit 1; }
echo "caught: $out"
