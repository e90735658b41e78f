#!/usr/bin/env bash
# A rank killed with SIGKILL: the surviving rank says which rank was lost and at which step (not
# only Open MPI's banner), and the job ends with a non-zero exit.
set -uo pipefail
bin=$1 src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
source "$src/tests/e2e/lib.sh"
start_two_rank_run "$bin" "$src" "$work"
rank1=$(rank_pid "$work" 1)
[ -n "$rank1" ] || { echo "FAIL: rank 1 not found"; cat log; kill $mp; exit 1; }
kill -KILL "$rank1"
for _ in $(seq 1 300); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
kill -0 $mp 2>/dev/null && { echo "FAIL: the job still runs after rank 1 died"; kill -9 $mp; exit 1; }
rc=0; wait $mp || rc=$?
line=$(grep "was lost" log | head -1)
echo "exit $rc: $line"
[ "$rc" -ne 0 ] || { echo "FAIL: exit code 0"; exit 1; }
[[ "$line" == "[rank 0] error: world rank 1 was lost (its process is gone) at step "*", while rank 0 waited for it in "*"; the job ends" ]] ||
  { echo "FAIL: no line naming the lost rank"; cat log; exit 1; }
