#!/usr/bin/env bash
# LoRA vs full fine-tuning on the CPU, each mode in a fresh process so peak RSS is its own.
#   bench/run_lora_vs_full.sh [BUILD_DIR] [WORK_DIR]
# Builds nothing: needs BUILD_DIR/bin/distillery and BUILD_DIR/bin/bench_lora_vs_full.
set -euo pipefail
build=${1:-build}
work=${2:-$(mktemp -d)}
mkdir -p "$work"
# A qwen2 of ~55M parameters: hidden 512, 8 layers, vocab 32000, untied lm_head.
cat > "$work/config.json" <<'JSON'
{"model_type": "qwen2", "vocab_size": 32000, "hidden_size": 512, "intermediate_size": 1408,
 "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 2, "max_position_embeddings": 4096,
 "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "hidden_act": "silu", "initializer_range": 0.02,
 "tie_word_embeddings": false}
JSON
[ -d "$work/model" ] || "$build/bin/distillery" init-model --config "$work/config.json" --out "$work/model" --seed 0
for mode in full lora; do
  "$build/bin/bench_lora_vs_full" --model "$work/model" --mode "$mode" "${@:3}"
done
