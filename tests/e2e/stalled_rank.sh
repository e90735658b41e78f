#!/usr/bin/env bash
# A stalled rank (SIGSTOP: a node that stops answering without closing its connections) must not
# hang the others: within parallel.timeout_s plus a few seconds the job ends with a line naming the
# collective, the step and the rank that did not arrive.
set -uo pipefail
bin=$1 src=$2
work=$(mktemp -d)
trap 'pkill -CONT -f "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
source "$src/tests/e2e/lib.sh"
start_two_rank_run "$bin" "$src" "$work" parallel.timeout_s=5
rank1=$(rank_pid "$work" 1)
[ -n "$rank1" ] || { echo "FAIL: rank 1 not found"; cat log; kill $mp; exit 1; }
kill -STOP "$rank1"
t0=$(date +%s)
for _ in $(seq 1 400); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
took=$(( $(date +%s) - t0 ))
kill -0 $mp 2>/dev/null && { echo "FAIL: the job still hangs ${took}s after rank 1 stalled"; kill -9 $mp; exit 1; }
rc=0; wait $mp || rc=$?
line=$(grep "did not complete within" log | head -1)
echo "exit $rc after ${took}s: $line"
[ "$rc" -ne 0 ] || { echo "FAIL: exit code 0"; exit 1; }
[ "$took" -le 20 ] || { echo "FAIL: took ${took}s for a 5 s timeout"; exit 1; }
[[ "$line" == "[rank 0] error: "*" among world ranks 0, 1 did not complete within parallel.timeout_s=5 at step "*"; ranks that did not arrive: 1 (stalled, lost or still computing)" ]] ||
  { echo "FAIL: message"; cat log; exit 1; }
