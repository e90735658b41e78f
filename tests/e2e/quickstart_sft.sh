#!/usr/bin/env bash
# The quickstart recipe end to end, as a user runs it: init-model, make-data, train; the loss
# must clearly fall and final/ must be a loadable model dir.
set -euo pipefail
bin=$1 src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
source "$src/tests/e2e/lib.sh"
make_quickstart_inputs "$bin" "$src"
"$bin" train "$src/recipes/quickstart/sft.yaml" 2> train.log || { cat train.log; exit 1; }
tail -3 train.log
m=runs/quickstart/sft/metrics.jsonl
steps=$(wc -l < $m)
[ "$steps" -eq 60 ] || { echo "expected 60 metric lines, got $steps"; exit 1; }
grep -q '"eval_loss"' $m || { echo "no eval_loss in metrics"; exit 1; }
/usr/bin/python3 - "$m" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
first = sum(r["loss"] for r in rows[:10]) / 10
last = sum(r["loss"] for r in rows[-10:]) / 10
evals = [r["eval_loss"] for r in rows if "eval_loss" in r]
print(f"loss first10={first:.4f} last10={last:.4f} eval={['%.4f' % e for e in evals]}")
assert last < 0.3 * first, "loss did not clearly fall"
assert evals[-1] < evals[0], "eval loss did not fall"
PY
[ -f runs/quickstart/sft/final/model.safetensors ] && [ -f runs/quickstart/sft/final/config.json ]
ls runs/quickstart/sft/checkpoints | grep -qx step-30
[ -f runs/quickstart/sft/final/tokenizer.json ] && [ -f runs/quickstart/sft/final/tokenizer_config.json ]
