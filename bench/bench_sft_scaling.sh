#!/usr/bin/env bash
# SFT tokens/s of one global batch (8 rows of 256 tokens) under several layouts on CPU ranks (MPI):
# one process, data parallelism, tensor parallelism and, for the MoE quickstart, expert parallelism.
#   bench/bench_sft_scaling.sh [steps]
# Needs the quickstart model and data (launch/quickstart.sh); the MoE rows also need the MoE
# quickstart model (recipes/quickstart/sft_moe.yaml's init-model command). Prints the median
# tokens/s of the steps after the first two, and the last loss (equal across layouts).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
steps=${1:-20}
bin=build/bin/distillery
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(data.eval= trainer.eval_every=0 trainer.max_steps=$steps optim.warmup_steps=1 trainer.save_every=0 trainer.log_every=1000
        trainer.micro_batch_size=4 trainer.resume=none)
report() { /usr/bin/python3 -c "
import json,sys,statistics
rows=[json.loads(l) for l in open(sys.argv[2])]
print('%-34s %6.0f tokens/s   last loss %.5f' % (sys.argv[1], statistics.median(r['tokens_per_s'] for r in rows[2:]), rows[-1]['loss']))
" "$1" "$2"; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
run() {  # run LABEL RECIPE NP ACCUM [OVERRIDES...]
  local label=$1 recipe=$2 np=$3 accum=$4; shift 4
  local dir=$out/$(echo "$label" | tr -c 'a-z0-9' _)
  if [ "$np" = 1 ]; then
    OMP_NUM_THREADS=2 "$bin" train "$recipe" "${common[@]}" trainer.grad_accum_steps=$accum trainer.output_dir=$dir "$@" 2>/dev/null
  else
    OMP_NUM_THREADS=1 mpirun --oversubscribe -np "$np" "$bin" train "$recipe" "${common[@]}" \
      trainer.grad_accum_steps=$accum trainer.output_dir=$dir "$@" 2>/dev/null
  fi
  report "$label" "$dir/metrics.jsonl"
}
dense=recipes/quickstart/sft.yaml
run "dense np=1 (2 threads)" $dense 1 2
run "dense np=2 dp=2" $dense 2 1
run "dense np=2 tp=2" $dense 2 2 parallel.tp=2
if [ -f runs/quickstart-moe/model/config.json ]; then
  moe=recipes/quickstart/sft_moe.yaml
  run "moe np=1 (2 threads)" $moe 1 2
  run "moe np=2 dp=2" $moe 2 1
  run "moe np=2 dp=2 ep=2" $moe 2 1 parallel.ep=2
  run "moe np=2 tp=2" $moe 2 2 parallel.tp=2
fi
