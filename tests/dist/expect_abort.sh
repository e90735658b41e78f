#!/usr/bin/env bash
# expect_abort.sh MAX_SECONDS COMMAND...  - passes when COMMAND (an mpirun of abort_probe) exits
# non-zero within MAX_SECONDS and its output names the failed rank ("[rank 1/2]").
set -u
max=$1; shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start_ms=$(($(date +%s%N) / 1000000))
timeout --kill-after=5 $((max + 30)) "$@" >"$out" 2>&1
rc=$?
elapsed_ms=$(($(date +%s%N) / 1000000 - start_ms))
elapsed=$((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000)))
cat "$out"
echo "[expect_abort] exit code $rc after ${elapsed}s (limit ${max}s)"
if [ "$rc" -eq 0 ]; then echo "[expect_abort] FAIL: the job succeeded although rank 1 failed"; exit 1; fi
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "[expect_abort] FAIL: the job hung"; exit 1; fi
if [ "$elapsed_ms" -gt $((max * 1000)) ]; then echo "[expect_abort] FAIL: took longer than ${max}s"; exit 1; fi
if ! grep -q "\[rank 1/2\] error: abort_probe: failure raised on purpose" "$out"; then
  echo "[expect_abort] FAIL: the output does not name rank 1's error"; exit 1
fi
if ! grep -q "\[rank 1/2\] aborting all 2 ranks (exit code 2)" "$out"; then
  echo "[expect_abort] FAIL: rank 1 did not announce the abort"; exit 1
fi
echo "[expect_abort] ok"
