// Merging: fold each adapter into its base weight, W <- W + s B A (DoRA: m / ||W + s B A||_row times
// that), leaving a plain model whose outputs equal the adapted model's.
#pragma once

#include <optional>
#include <string>

#include "models/transformer.h"

namespace distillery {

// Merges every LoRA adapter of `model` into its Linear (in fp32, then cast to the weight's dtype) and
// detaches the adapters. modules_to_save already live in the model's own parameters.
void merge_lora(CausalLM& model);

// `distillery merge-lora`: loads `base_dir` in fp32, attaches and loads the PEFT adapter, merges, and
// writes a Hugging Face model directory at `out_dir` (atomically) in `dtype` (default: the base's
// torch_dtype). Tokenizer files come from the adapter directory when it has them, else from the base.
void merge_lora_dirs(const std::string& base_dir, const std::string& adapter_dir, const std::string& out_dir,
                     std::optional<torch::Dtype> dtype, int64_t max_shard_bytes);

}  // namespace distillery
