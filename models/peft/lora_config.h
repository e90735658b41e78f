// The `lora:` section of a recipe. Keys and defaults are PEFT's LoraConfig, so a recipe reads like
// the Python a user would otherwise write. LoRA is off while r is 0 and no adapter is given; it
// then adapts the model of any algorithm (sft, distill, grpo).
#pragma once

#include "common/config_fields.h"

namespace distillery {

// The value of target_modules that selects every linear projection except the output layer.
inline constexpr const char* kAllLinear = "all-linear";

struct LoraConfig {
  int64_t r = 0;
  double lora_alpha = 8;
  double lora_dropout = 0.0;
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};
  bool use_rslora = false;
  bool use_dora = false;
  std::vector<std::string> modules_to_save;
  std::string bias = "none";
  std::string adapter;

  bool enabled() const { return r > 0 || !adapter.empty(); }
  // alpha / r, or alpha / sqrt(r) with rsLoRA (Kalajdzievski 2023): the factor on B @ A.
  double scaling() const;

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("r", r, "LoRA rank; 0 disables LoRA (unless `adapter` is set) and trains the full model", ge(0));
    v("lora_alpha", lora_alpha, "adapter output is scaled by lora_alpha / r (lora_alpha / sqrt(r) with use_rslora)",
      gt(0));
    v("lora_dropout", lora_dropout, "dropout on the adapter's input, in training only", between(0, 0.999));
    v("target_modules", target_modules,
      "linear modules to adapt: names matched as suffixes of the full module name (q_proj), one regex matched "
      "against the full name (PEFT's re.fullmatch), or all-linear (every projection except lm_head)");
    v("use_rslora", use_rslora, "rank-stabilized scaling lora_alpha / sqrt(r)");
    v("use_dora", use_dora, "DoRA: a trained per-output magnitude times the normalized adapted weight");
    v("modules_to_save", modules_to_save,
      "modules trained in full and saved in the adapter file (e.g. lm_head, embed_tokens)");
    v("bias", bias, "which biases are trained (PEFT's bias); only none is supported", one_of({"none"}));
    v("adapter", adapter,
      "a PEFT adapter directory to start from; its adapter_config.json defines the adapter (leave the keys above "
      "at their defaults or equal to the file's)");
  }
};

}  // namespace distillery
