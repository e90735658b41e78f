// Entry points that turn a loaded base model into an adapted one: for training (the recipe's lora
// section, optionally starting from a PEFT adapter) and for inference (base + adapter directory).
#pragma once

#include <string>

#include "models/peft/lora.h"

namespace distillery {

// The adapter a run trains: the recipe's section, or, with `adapter: DIR`, DIR/adapter_config.json.
// A recipe key set away from its default that disagrees with the file -> UserError naming both.
LoraConfig resolve_lora_config(const LoraConfig& section);

// Applies the resolved config to `model` (fresh adapters seeded with `seed`) and, with `adapter: DIR`,
// loads DIR's weights. Returns the resolved config (what checkpoints write).
LoraConfig adapt_for_training(CausalLM& model, const LoraConfig& section, uint64_t seed);

// One log line: rank, scaling, how many modules are adapted and what share of parameters trains.
std::string lora_summary(CausalLM& model, const LoraConfig& cfg);

// Base model (base_dir, or the adapter's base_model_name_or_path when base_dir is empty) with the PEFT
// adapter in `adapter_dir` attached, ready for generation (eval mode).
// With `mp`, this rank's tp/ep shard of both.
CausalLM load_adapted_model(const std::string& adapter_dir, std::string base_dir, torch::Dtype dtype,
                            const parallel::ModelParallel& mp = {});

}  // namespace distillery
