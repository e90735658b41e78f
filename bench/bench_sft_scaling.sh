#!/usr/bin/env bash
# SFT tokens/s on 1 and 2 ranks (CPU, MPI), same global batch: the quickstart model and data.
#   bench/bench_sft_scaling.sh [steps]        (after launch/quickstart.sh has made model + data)
# Prints the median tokens/s of the steps after the first two for each world size.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
steps=${1:-20}
bin=build/bin/distillery
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(data.eval= trainer.max_steps=$steps optim.warmup_steps=1 trainer.save_every=0 trainer.log_every=1000
        trainer.micro_batch_size=4 trainer.resume=none)
median() { /usr/bin/python3 -c "
import json,sys,statistics
rows=[json.loads(l) for l in open(sys.argv[1])][2:]
print('%.0f' % statistics.median(r['tokens_per_s'] for r in rows))" "$1"; }
out=$(mktemp -d)
OMP_NUM_THREADS=2 "$bin" train recipes/quickstart/sft.yaml "${common[@]}" trainer.grad_accum_steps=2 \
  trainer.output_dir=$out/np1 2>/dev/null
OMP_NUM_THREADS=1 mpirun --oversubscribe -np 2 "$bin" train recipes/quickstart/sft.yaml "${common[@]}" \
  trainer.grad_accum_steps=1 trainer.output_dir=$out/np2 2>/dev/null
echo "np=1 (2 threads): $(median $out/np1/metrics.jsonl) tokens/s"
echo "np=2 (1 thread each): $(median $out/np2/metrics.jsonl) tokens/s"
rm -rf "$out"
