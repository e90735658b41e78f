#include "trainer/trained_weights.h"

#include <iostream>

#include "models/hf_model.h"
#include "models/peft/adapt.h"
#include "models/peft/peft_format.h"

namespace distillery {

TrainedWeights::TrainedWeights(const RecipeConfig& cfg, CausalLM model, bool lead) : cfg_(cfg), model_(std::move(model)) {
  if (!cfg_.lora.enabled()) return;
  lora_ = adapt_for_training(model_, cfg_.lora, static_cast<uint64_t>(cfg_.trainer.seed));
  if (lead) std::cerr << "[distillery] " << lora_summary(model_, *lora_) << "\n";
}

std::function<void(const std::string&, bool)> TrainedWeights::checkpoint_writer() {
  if (!lora_) return {};
  return [this](const std::string& dir, bool write) {
    write_peft_adapter_files(model_, *lora_, dir, cfg_.model.path, write);
  };
}

std::function<void(const std::string&)> TrainedWeights::checkpoint_loader() {
  if (!lora_) return {};
  return [this](const std::string& dir) { load_peft_adapter_weights(model_, *lora_, dir); };
}

void TrainedWeights::save_final(const std::string& dir, torch::Dtype dtype, int64_t max_shard_bytes, bool lead) {
  if (lora_)
    save_peft_adapter(model_, *lora_, dir, cfg_.model.path, lead);
  else
    save_hf_model(model_, dir, cfg_.model.path, dtype, max_shard_bytes, lead);
}

}  // namespace distillery
