// LoRA adapters in PEFT's on-disk layout, so `PeftModel.from_pretrained(base, DIR)` loads what
// distillery writes and distillery loads what PEFT writes:
//   adapter_config.json         LoraConfig fields (peft_type LORA, r, lora_alpha, target_modules, ...)
//   adapter_model.safetensors   base_model.model.<module>.lora_A.weight   [r, in]
//                               base_model.model.<module>.lora_B.weight   [out, r]
//                               base_model.model.<module>.lora_magnitude_vector   [out]   (DoRA)
//                               base_model.model.<module>.<param>         (modules_to_save, e.g. lm_head.weight)
// plus the base model's tokenizer files, as for model directories.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/peft/lora_config.h"
#include "models/transformer.h"

namespace distillery {

// PEFT's prefix for a causal LM: PeftModelForCausalLM.base_model (LoraModel).model (the HF model).
inline constexpr const char* kPeftPrefix = "base_model.model.";

// adapter_config.json for `model` adapted with `cfg` (all-linear is written as the module names it
// selected, as PEFT does). `base_model` goes to base_model_name_or_path.
nlohmann::json peft_adapter_config(CausalLM& model, const LoraConfig& cfg, const std::string& base_model);

// Reads and validates DIR/adapter_config.json into a LoraConfig (adapter left empty). A field whose
// value distillery cannot honour -> UserError naming the file, the field and the value.
LoraConfig read_peft_adapter_config(const std::string& dir);
// base_model_name_or_path of DIR/adapter_config.json ("" when absent).
std::string peft_base_model(const std::string& dir);

// One adapter tensor of this rank: its PEFT name, its name in the model, the live tensor.
struct PeftTensor {
  std::string peft_name, model_name;
  torch::Tensor tensor;
};
std::vector<PeftTensor> peft_local_tensors(CausalLM& model, const LoraConfig& cfg);

// The adapter's tensors under PEFT's names, each in its own dtype, in module order, whole. For a
// sharded model (tp or ep > 1) it is collective and only ranks with keep=true get the list.
std::vector<std::pair<std::string, torch::Tensor>> peft_state_dict(CausalLM& model, const LoraConfig& cfg,
                                                                   bool keep = true);

// Writes adapter_config.json, adapter_model.safetensors and the tokenizer files of `base_model_dir`
// into the existing directory `dir` (no rename: used inside checkpoint directories). Sharded models:
// every rank calls it, the rank with write=true writes.
void write_peft_adapter_files(CausalLM& model, const LoraConfig& cfg, const std::string& dir,
                              const std::string& base_model_dir, bool write = true);
// Writes a complete adapter directory atomically (temp dir + rename).
void save_peft_adapter(CausalLM& model, const LoraConfig& cfg, const std::string& out_dir,
                       const std::string& base_model_dir, bool write = true);

// Copies DIR/adapter_model.safetensors into the adapters and modules_to_save of `model` (already
// adapted with `cfg`): every tensor must be present with the model's shape, and none may be left over.
void load_peft_adapter_weights(CausalLM& model, const LoraConfig& cfg, const std::string& dir);

}  // namespace distillery
