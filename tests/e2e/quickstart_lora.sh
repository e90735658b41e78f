#!/usr/bin/env bash
# The LoRA quickstart end to end: train adapters on a frozen base, check the PEFT adapter files,
# then merge them into a Hugging Face model dir with `distillery merge-lora`.
set -euo pipefail
bin=$1 src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
source "$src/tests/e2e/lib.sh"
make_quickstart_inputs "$bin" "$src"
"$bin" train "$src/recipes/quickstart/sft_lora.yaml" 2> train.log || { cat train.log; exit 1; }
grep "lora:" train.log
tail -2 train.log
run=runs/quickstart/sft_lora
/usr/bin/python3 - "$run" <<'PY'
import json, os, struct, sys
run = sys.argv[1]
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
assert len(rows) == 60, len(rows)
first = sum(r["loss"] for r in rows[:10]) / 10
last = sum(r["loss"] for r in rows[-10:]) / 10
print(f"loss step1={rows[0]['loss']:.4f} first10={first:.4f} last10={last:.4f}")
assert last < 0.5 * rows[0]["loss"] and last < 0.75 * first, "loss did not clearly fall"
layers = json.load(open("runs/quickstart/model/config.json"))["num_hidden_layers"]
for d in (f"{run}/final", f"{run}/checkpoints/step-30"):
    cfg = json.load(open(f"{d}/adapter_config.json"))
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 16 and cfg["lora_alpha"] == 32, cfg
    assert cfg["modules_to_save"] == ["embed_tokens"], cfg
    assert not os.path.exists(f"{d}/model.safetensors"), "a LoRA run must not save the base"
    with open(f"{d}/adapter_model.safetensors", "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    names = set(header) - {"__metadata__"}
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in names, sorted(names)[:4]
    assert "base_model.model.model.embed_tokens.weight" in names
    assert len(names) == 2 * 7 * layers + 1, len(names)  # A and B on 7 projections per layer, embed_tokens
    assert os.path.exists(f"{d}/tokenizer.json"), "tokenizer files are carried from the base"
assert os.path.exists(f"{run}/checkpoints/step-30/trainer_state/optimizer.safetensors")
PY
"$bin" merge-lora --base runs/quickstart/model --adapter $run/final --out merged
[ -f merged/config.json ] && [ -f merged/model.safetensors ]
# The merged model is an ordinary model dir: it fine-tunes like any other (one step, no LoRA).
"$bin" train "$src/recipes/quickstart/sft.yaml" model.path=merged trainer.max_steps=1 optim.warmup_steps=0 \
  trainer.output_dir=after 2>/dev/null
[ -f after/final/model.safetensors ]
