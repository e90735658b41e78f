// LoRA (Hu et al. 2021) and DoRA (Liu et al. 2024) as an adaptation of a model: a pass attaches an
// adapter to each selected `Linear` and freezes every other weight, so the algorithms and the model
// code never change. Numbers follow PEFT's LoraLayer / DoraLinearLayer:
//   LoRA: y = base(x) + s * B(A(drop(x)))                        s = alpha / r  (alpha / sqrt(r): rsLoRA)
//   DoRA: y = base(x) + (k - 1) * (W drop(x)) + k * s * B(A(drop(x))),   k = m / ||W + s B A||_row
// where the row norm is detached from the graph (DoRA paper, section 4.3) and m starts at ||W||_row,
// so without dropout DoRA is k * (W + s B A) x + b: the bias is not rescaled.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/peft/lora_config.h"
#include "parallel/linear.h"
#include "models/transformer.h"

namespace distillery {

// The child-module name an adapter is registered under: its parameters are "<linear>.lora.lora_A" etc.
inline constexpr const char* kLoraChild = "lora";

class LoraAdapter : public LinearAdapter {
 public:
  // A [r, in] ~ Kaiming-uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)) drawn from `gen`, B [out, r] = 0,
  // so a fresh adapter leaves the output unchanged. Adapter parameters are fp32 whatever the base dtype.
  LoraAdapter(const LinearImpl& base, int64_t r, double scaling, double dropout, bool use_dora, at::Generator& gen);

  torch::Tensor forward(const torch::Tensor& x, LinearImpl& base) override;
  // W + s B A, or for DoRA (m / ||W + s B A||_row) * (W + s B A): the merged [out, in] weight, fp32.
  torch::Tensor merged_weight(LinearImpl& base) override;
  // Sharded with the base layer: column-parallel -> B and m split by rows, A whole with a partial
  // gradient; row-parallel -> A split by columns, B and m whole with partial gradients.
  std::vector<std::pair<std::string, parallel::TpShard>> tp_shards() const override;
  // s * B @ A, [out, in] fp32.
  torch::Tensor delta_weight() const;

  double scaling() const { return scaling_; }
  bool use_dora() const { return use_dora_; }

  torch::Tensor lora_A;                 // [r, in]
  torch::Tensor lora_B;                 // [out, r]
  torch::Tensor lora_magnitude_vector;  // [out], DoRA only

 private:
  // ||W + s B A||_row over the whole input width (summed over tp for a row-parallel base), no grad.
  torch::Tensor row_norm(LinearImpl& base) const;

  double scaling_, dropout_;
  bool use_dora_;
  TpLinear tp_;  // the base layer's split
};

// Every `Linear` of the model by full module name ("model.layers.0.self_attn.q_proj"), in module order.
std::vector<std::pair<std::string, LinearImpl*>> linear_modules(CausalLM& model);

// The linear modules that carry a LoraAdapter, with it.
std::vector<std::tuple<std::string, LinearImpl*, LoraAdapter*>> lora_modules(CausalLM& model);

// Full names of the modules `modules_to_save` selects (matched like PEFT: equal or "."-suffix); an entry
// that selects nothing -> UserError listing the model's top-level trainable candidates.
std::vector<std::string> resolve_modules_to_save(CausalLM& model, const LoraConfig& cfg);

struct AppliedLora {
  std::vector<std::string> adapted;        // linear modules with an adapter
  std::vector<std::string> saved_modules;  // modules trained in full (modules_to_save)
  int64_t trainable = 0, total = 0;        // parameter counts after freezing
};

// Switches every LoRA/DoRA adapter of `model` off for its lifetime (they stay attached and keep their
// weights): forwards are the base model's, e.g. GRPO's reference policy without a second copy.
// modules_to_save copies are trained weights, not adapters, and stay as they are.
class AdaptersDisabled {
 public:
  explicit AdaptersDisabled(CausalLM& model);
  ~AdaptersDisabled();
  AdaptersDisabled(const AdaptersDisabled&) = delete;
  AdaptersDisabled& operator=(const AdaptersDisabled&) = delete;

 private:
  std::vector<LinearImpl*> switched_;
};

// Attaches adapters to the modules cfg.target_modules selects (A drawn from a generator seeded with
// `seed`, in module order), sets requires_grad false on every base parameter and true on adapters and
// modules_to_save. `cfg.r` must be > 0.
AppliedLora apply_lora(CausalLM& model, const LoraConfig& cfg, uint64_t seed);

}  // namespace distillery
