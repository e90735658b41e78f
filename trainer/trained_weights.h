// Which weights a run trains, and so what it optimizes, saves and loads: the whole model (saved as a
// Hugging Face model dir), or LoRA/DoRA adapters on a frozen base (saved as a PEFT adapter dir,
// docs/lora.md). Every algorithm trains through this one choice.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "models/peft/lora_config.h"
#include "models/transformer.h"
#include "trainer/recipe.h"

namespace distillery {

class TrainedWeights {
 public:
  // With lora enabled, attaches the adapters (from lora.adapter, or fresh ones drawn from
  // trainer.seed) and freezes every base weight; logs what it adapted when `lead`.
  TrainedWeights(const RecipeConfig& cfg, CausalLM model, bool lead);
  bool adapters() const { return lora_.has_value(); }
  // For CheckpointWrite::write_weights / load_checkpoint (trainer/checkpoint.h): unset for the whole model.
  std::function<void(const std::string& dir, bool write)> checkpoint_writer();
  std::function<void(const std::string& dir)> checkpoint_loader();
  // The run's final/ directory (collective over the world; the `lead` rank writes).
  void save_final(const std::string& dir, torch::Dtype dtype, int64_t max_shard_bytes, bool lead);

 private:
  const RecipeConfig& cfg_;
  CausalLM model_;
  std::optional<LoraConfig> lora_;
};

}  // namespace distillery
