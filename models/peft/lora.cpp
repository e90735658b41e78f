#include "models/peft/lora.h"

#include "parallel/tp_ops.h"

#include <cmath>
#include <set>

#include "models/peft/target_modules.h"
#include "parallel/model_shards.h"
#include "common/error.h"

namespace distillery {

double LoraConfig::scaling() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
}

LoraAdapter::LoraAdapter(const LinearImpl& base, int64_t r, double scaling, double dropout, bool use_dora,
                         at::Generator& gen)
    : scaling_(scaling), dropout_(dropout), use_dora_(use_dora), tp_(base.tp()) {
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  // A is drawn whole (every tp rank draws the same numbers) and sliced, so any tp size starts alike.
  const auto in_shard = base.in_shard();
  const int64_t in_full = base.in_features * (in_shard.sharded() ? in_shard.parts : 1);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_full));
  // Drawn on the CPU from our own generator, so the init is the same on every device.
  auto a = torch::empty({r, in_full}, opts).uniform_(-bound, bound, gen);
  a = parallel::local_slice(a, in_shard).contiguous();
  const auto device = base.weight.device();
  lora_A = register_parameter("lora_A", a.to(device));
  lora_B = register_parameter("lora_B", torch::zeros({base.out_features, r}, opts.device(device)));
  if (use_dora_) {
    auto sq = base.weight.to(torch::kFloat32).pow(2).sum(1);
    if (tp_.style == TpStyle::kRow) sq = parallel::sum_over_tp(sq, tp_.comm);
    lora_magnitude_vector = register_parameter("lora_magnitude_vector", sq.sqrt().contiguous());
  }
}

std::vector<std::pair<std::string, parallel::TpShard>> LoraAdapter::tp_shards() const {
  parallel::TpShard partial;
  partial.partial_grad = true;
  std::vector<std::pair<std::string, parallel::TpShard>> out;
  if (tp_.style == TpStyle::kColumn) {
    parallel::TpShard rows;
    rows.dim = 0, rows.index = tp_.index, rows.parts = tp_.parts;
    out = {{"lora_A", partial}, {"lora_B", rows}};
    if (use_dora_) out.emplace_back("lora_magnitude_vector", rows);
  } else if (tp_.style == TpStyle::kRow) {
    parallel::TpShard cols;
    cols.dim = 1, cols.index = tp_.index, cols.parts = tp_.parts;
    out = {{"lora_A", cols}, {"lora_B", partial}};
    if (use_dora_) out.emplace_back("lora_magnitude_vector", partial);
  }
  return out;
}

torch::Tensor LoraAdapter::delta_weight() const { return torch::matmul(lora_B, lora_A) * scaling_; }

torch::Tensor LoraAdapter::row_norm(LinearImpl& base) const {
  torch::NoGradGuard no_grad;
  auto sq = (base.weight.to(lora_A.scalar_type()) + delta_weight()).pow(2).sum(1);
  if (tp_.style == TpStyle::kRow) sq = parallel::sum_over_tp(sq, tp_.comm);
  return sq.sqrt();
}

torch::Tensor LoraAdapter::forward(const torch::Tensor& x, LinearImpl& base) {
  auto result = base.base_forward(x);                  // [.., out], base dtype
  auto xa = x.to(lora_A.scalar_type());
  const bool drop = is_training() && dropout_ > 0;
  if (drop) xa = torch::dropout(xa, dropout_, /*train=*/true);
  auto lora = torch::linear(torch::linear(xa, lora_A), lora_B);  // [.., out] fp32
  if (!use_dora_) return (result.to(lora.scalar_type()) + lora * scaling_).to(x.scalar_type());

  auto w = base.weight.to(lora_A.scalar_type());
  const torch::Tensor norm = row_norm(base);  // [out]: a constant for autograd, as in the DoRA paper and PEFT
  auto k = lora_magnitude_vector / norm;      // [out]
  // W x without bias, on the adapter's input: reuse the base result unless dropout changed the input.
  torch::Tensor plain;
  if (drop) {
    plain = torch::linear(xa, w);
  } else {
    plain = result.to(lora.scalar_type());
    if (base.local_bias().defined()) plain = plain - base.local_bias().to(plain.scalar_type());
  }
  return (result.to(lora.scalar_type()) + (k - 1) * plain + k * lora * scaling_).to(x.scalar_type());
}

torch::Tensor LoraAdapter::merged_weight(LinearImpl& base) {
  auto merged = base.weight.to(lora_A.scalar_type()) + delta_weight();  // [out, in]
  if (!use_dora_) return merged;
  return (lora_magnitude_vector / row_norm(base)).unsqueeze(1) * merged;
}

std::vector<std::pair<std::string, LinearImpl*>> linear_modules(CausalLM& model) {
  std::vector<std::pair<std::string, LinearImpl*>> out;
  for (const auto& item : model->named_modules("", /*include_self=*/false))
    if (auto* lin = dynamic_cast<LinearImpl*>(item.value().get())) out.emplace_back(item.key(), lin);
  return out;
}

std::vector<std::tuple<std::string, LinearImpl*, LoraAdapter*>> lora_modules(CausalLM& model) {
  std::vector<std::tuple<std::string, LinearImpl*, LoraAdapter*>> out;
  for (const auto& [name, lin] : linear_modules(model))
    if (auto* a = dynamic_cast<LoraAdapter*>(lin->adapter().get())) out.emplace_back(name, lin, a);
  return out;
}

std::vector<std::string> resolve_modules_to_save(CausalLM& model, const LoraConfig& cfg) {
  std::vector<std::string> out;
  std::vector<std::string> candidates;  // modules that own parameters directly, for the error message
  for (const auto& item : model->named_modules("", /*include_self=*/false)) {
    if (dynamic_cast<LinearAdapter*>(item.value().get())) continue;
    if (!item.value()->named_parameters(/*recurse=*/false).is_empty()) candidates.push_back(item.key());
  }
  for (const auto& entry : cfg.modules_to_save) {
    DIST_CHECK(!lora::is_regex_entry(entry), "lora.modules_to_save: '", entry,
               "' is a pattern; name modules (e.g. lm_head, embed_tokens)");
    bool any = false;
    for (const auto& item : model->named_modules("", /*include_self=*/false)) {
      if (!lora::entry_matches(entry, item.key()) || dynamic_cast<LinearAdapter*>(item.value().get())) continue;
      any = true;
      if (std::find(out.begin(), out.end(), item.key()) == out.end()) out.push_back(item.key());
    }
    if (!any) {
      std::string names;
      for (const auto& n : lora::short_names(candidates)) names += (names.empty() ? "" : ", ") + n;
      DIST_FAIL("lora.modules_to_save: '", entry, "' matches no module of the model; modules with weights: ", names);
    }
  }
  return out;
}

AppliedLora apply_lora(CausalLM& model, const LoraConfig& cfg, uint64_t seed) {
  DIST_CHECK(cfg.r > 0, "lora.r must be > 0 to apply LoRA");
  DIST_CHECK(lora_modules(model).empty(), "apply_lora: the model already carries LoRA adapters");
  auto linears = linear_modules(model);
  std::vector<std::string> linear_names;
  for (const auto& l : linears) linear_names.push_back(l.first);
  AppliedLora applied;
  // Targets read from an adapter directory are that file's, not the recipe's.
  const std::string key =
      cfg.adapter.empty() ? "lora.target_modules" : cfg.adapter + "/adapter_config.json: target_modules";
  applied.adapted = lora::select_targets(cfg.target_modules, linear_names, "lm_head", key);
  applied.saved_modules = resolve_modules_to_save(model, cfg);
  for (const auto& s : applied.saved_modules)
    for (const auto& a : applied.adapted)
      DIST_CHECK(!(a == s || a.rfind(s + ".", 0) == 0), "lora: module '", a,
                 "' is both in target_modules and modules_to_save; choose one");
  for (const auto& a : applied.adapted)
    DIST_CHECK(a != "lm_head" || cfg.lora_dropout == 0, "lora.target_modules: lm_head is adapted through its merged ",
               "weight (the fused lm_head + loss takes a weight), so lora.lora_dropout must be 0 when it is targeted");

  for (auto& p : model->parameters()) p.requires_grad_(false);
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& [name, lin] : linears) {
    if (std::find(applied.adapted.begin(), applied.adapted.end(), name) == applied.adapted.end()) continue;
    lin->attach_adapter(kLoraChild,
                        std::make_shared<LoraAdapter>(*lin, cfg.r, cfg.scaling(), cfg.lora_dropout, cfg.use_dora, gen));
  }
  auto modules = model->named_modules("", /*include_self=*/false);
  for (const auto& s : applied.saved_modules)
    for (auto& p : modules[s]->parameters()) p.requires_grad_(true);
  for (auto& p : model->parameters()) {
    applied.total += p.numel();
    if (p.requires_grad()) applied.trainable += p.numel();
  }
  return applied;
}

AdaptersDisabled::AdaptersDisabled(CausalLM& model) {
  for (auto& [name, linear, adapter] : lora_modules(model)) {
    (void)name;
    (void)adapter;
    if (!linear->adapter_enabled()) continue;
    linear->set_adapter_enabled(false);
    switched_.push_back(linear);
  }
}

AdaptersDisabled::~AdaptersDisabled() {
  for (auto* linear : switched_) linear->set_adapter_enabled(true);
}

}  // namespace distillery
