#include "models/peft/peft_format.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "models/peft/lora.h"
#include "models/peft/target_modules.h"
#include "parallel/model_shards.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "models/hf_model.h"
#include "common/safetensors.h"

namespace distillery {
namespace fs = std::filesystem;
using nlohmann::json;

namespace peft_detail {

// `target_modules` as PEFT stores it: one regex as a string, names as a list.
json target_modules_json(CausalLM& model, const LoraConfig& cfg) {
  if (cfg.target_modules.size() == 1 && cfg.target_modules[0] == kAllLinear) {
    std::vector<std::string> adapted;
    for (const auto& m : lora_modules(model)) adapted.push_back(std::get<0>(m));
    auto names = lora::short_names(adapted);
    std::sort(names.begin(), names.end());
    return names;
  }
  if (cfg.target_modules.size() == 1 && lora::is_regex_entry(cfg.target_modules[0])) return cfg.target_modules[0];
  return cfg.target_modules;
}

// A field that must hold `expected` (or be absent / null when `null_ok`) for distillery to load the adapter.
void expect_field(const json& j, const std::string& origin, const std::string& field, const json& expected,
                  bool null_ok = true) {
  if (!j.contains(field)) return;
  const json& v = j[field];
  if (v.is_null() && null_ok) return;
  bool ok = v == expected;
  if (!ok && expected.is_object() && expected.empty()) ok = v.is_object() && v.empty();
  if (!ok && expected.is_array() && expected.empty()) ok = v.is_array() && v.empty();
  DIST_CHECK(ok, origin, ": field '", field, "' = ", v.dump(), " is not supported (expected ",
             null_ok ? "null or " : "", expected.dump(), ")");
}

template <class T>
T field(const json& j, const std::string& origin, const std::string& key, T fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  try {
    return j[key].get<T>();
  } catch (const json::exception&) {
    DIST_FAIL(origin, ": field '", key, "' = ", j[key].dump(), " has the wrong type");
  }
}

}  // namespace peft_detail

nlohmann::json peft_adapter_config(CausalLM& model, const LoraConfig& cfg, const std::string& base_model) {
  // The fields PEFT's LoraConfig has had since 0.10, so every recent PEFT reads the file.
  return json{{"alpha_pattern", json::object()},
              {"auto_mapping", nullptr},
              {"base_model_name_or_path", base_model},
              {"bias", cfg.bias},
              {"fan_in_fan_out", false},
              {"inference_mode", true},
              {"init_lora_weights", true},
              {"layer_replication", nullptr},
              {"layers_pattern", nullptr},
              {"layers_to_transform", nullptr},
              {"loftq_config", json::object()},
              // PEFT users write integers (lora_alpha=32); keep them integers in the file.
              {"lora_alpha", cfg.lora_alpha == std::floor(cfg.lora_alpha) && std::fabs(cfg.lora_alpha) < 1e15
                                 ? json(static_cast<int64_t>(cfg.lora_alpha))
                                 : json(cfg.lora_alpha)},
              {"lora_dropout", cfg.lora_dropout},
              {"megatron_config", nullptr},
              {"megatron_core", "megatron.core"},
              {"modules_to_save", cfg.modules_to_save.empty() ? json(nullptr) : json(cfg.modules_to_save)},
              {"peft_type", "LORA"},
              {"r", cfg.r},
              {"rank_pattern", json::object()},
              {"revision", nullptr},
              {"target_modules", peft_detail::target_modules_json(model, cfg)},
              {"task_type", "CAUSAL_LM"},
              {"use_dora", cfg.use_dora},
              {"use_rslora", cfg.use_rslora}};
}

std::string peft_base_model(const std::string& dir) {
  const json j = read_json_file((fs::path(dir) / "adapter_config.json").string());
  return j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string()
             ? j["base_model_name_or_path"].get<std::string>()
             : "";
}

LoraConfig read_peft_adapter_config(const std::string& dir) {
  using peft_detail::expect_field;
  using peft_detail::field;
  const std::string origin = (fs::path(dir) / "adapter_config.json").string();
  DIST_CHECK(fs::exists(origin), dir, ": not a PEFT adapter directory (no adapter_config.json)");
  const json j = read_json_file(origin);
  DIST_CHECK(j.is_object(), origin, ": expected a JSON object");
  DIST_CHECK(j.contains("peft_type") && j["peft_type"] == "LORA", origin, ": field 'peft_type' = ",
             j.contains("peft_type") ? j["peft_type"].dump() : "missing", " is not supported (expected \"LORA\")");
  expect_field(j, origin, "task_type", "CAUSAL_LM");
  expect_field(j, origin, "fan_in_fan_out", false);
  expect_field(j, origin, "bias", "none");
  expect_field(j, origin, "lora_bias", false);
  expect_field(j, origin, "rank_pattern", json::object());
  expect_field(j, origin, "alpha_pattern", json::object());
  expect_field(j, origin, "layers_to_transform", nullptr);
  expect_field(j, origin, "layers_pattern", json::array());
  expect_field(j, origin, "layer_replication", nullptr);
  expect_field(j, origin, "exclude_modules", json::array());
  expect_field(j, origin, "target_parameters", json::array());
  expect_field(j, origin, "trainable_token_indices", nullptr);
  expect_field(j, origin, "use_qalora", false);
  expect_field(j, origin, "megatron_config", nullptr);

  LoraConfig cfg;
  cfg.r = field<int64_t>(j, origin, "r", 8);
  DIST_CHECK(cfg.r > 0, origin, ": field 'r' = ", cfg.r, " must be > 0");
  cfg.lora_alpha = field<double>(j, origin, "lora_alpha", 8.0);
  DIST_CHECK(cfg.lora_alpha > 0, origin, ": field 'lora_alpha' = ", cfg.lora_alpha, " must be > 0");
  cfg.lora_dropout = field<double>(j, origin, "lora_dropout", 0.0);
  DIST_CHECK(cfg.lora_dropout >= 0 && cfg.lora_dropout < 1, origin, ": field 'lora_dropout' = ", cfg.lora_dropout,
             " must be in [0, 1)");
  cfg.use_rslora = field<bool>(j, origin, "use_rslora", false);
  cfg.use_dora = field<bool>(j, origin, "use_dora", false);
  cfg.bias = "none";
  DIST_CHECK(j.contains("target_modules") && !j["target_modules"].is_null(), origin,
             ": field 'target_modules' is missing; write the adapted module names");
  const json& t = j["target_modules"];
  if (t.is_string()) {
    cfg.target_modules = {t.get<std::string>()};
  } else {
    cfg.target_modules = field<std::vector<std::string>>(j, origin, "target_modules", {});
    std::sort(cfg.target_modules.begin(), cfg.target_modules.end());  // PEFT writes a set
  }
  DIST_CHECK(!cfg.target_modules.empty(), origin, ": field 'target_modules' is empty");
  cfg.modules_to_save = field<std::vector<std::string>>(j, origin, "modules_to_save", {});
  return cfg;
}

std::vector<PeftTensor> peft_local_tensors(CausalLM& model, const LoraConfig& cfg) {
  std::vector<PeftTensor> out;
  const std::string prefix = kPeftPrefix, child = std::string(".") + kLoraChild + ".";
  for (const auto& [name, lin, a] : lora_modules(model)) {
    out.push_back({prefix + name + ".lora_A.weight", name + child + "lora_A", a->lora_A});
    out.push_back({prefix + name + ".lora_B.weight", name + child + "lora_B", a->lora_B});
    if (a->use_dora())
      out.push_back({prefix + name + ".lora_magnitude_vector", name + child + "lora_magnitude_vector",
                     a->lora_magnitude_vector});
  }
  auto modules = model->named_modules("", /*include_self=*/false);
  for (const auto& s : resolve_modules_to_save(model, cfg))
    for (const auto& p : modules[s]->named_parameters())
      out.push_back({prefix + s + "." + p.key(), s + "." + p.key(), p.value()});
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> peft_state_dict(CausalLM& model, const LoraConfig& cfg, bool keep) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::map<std::string, std::string> model_name;
  for (auto& t : peft_local_tensors(model, cfg)) {
    out.emplace_back(t.peft_name, t.tensor.detach());
    model_name[t.peft_name] = t.model_name;
  }
  const auto& mp = model->parallel();
  if (mp.tp_size() == 1 && mp.ep_size() == 1) return keep ? out : decltype(out){};
  const auto shards = parallel::tp_shard_map(*model);
  return parallel::gather_full(
      out, [&](const std::string& n) { return parallel::shard_of(shards, model_name.at(n)); }, mp,
      model->experts_per_rank(), keep);
}

void write_peft_adapter_files(CausalLM& model, const LoraConfig& cfg, const std::string& dir,
                              const std::string& base_model_dir, bool write) {
  auto tensors = peft_state_dict(model, cfg, write);
  if (!write) return;
  fs::create_directories(dir);
  write_json_file((fs::path(dir) / "adapter_config.json").string(), peft_adapter_config(model, cfg, base_model_dir));
  save_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), tensors);
  if (!base_model_dir.empty())
    for (const auto& f : hf_side_files()) {
      const fs::path src = fs::path(base_model_dir) / f;
      if (fs::exists(src)) copy_file_atomic(src.string(), (fs::path(dir) / f).string());
    }
}

void save_peft_adapter(CausalLM& model, const LoraConfig& cfg, const std::string& out_dir,
                       const std::string& base_model_dir, bool write) {
  const std::string tmp = out_dir + ".tmp";
  if (write) fs::remove_all(tmp);
  write_peft_adapter_files(model, cfg, tmp, base_model_dir, write);
  if (write) commit_dir(tmp, out_dir);
}

void load_peft_adapter_weights(CausalLM& model, const LoraConfig& cfg, const std::string& dir) {
  const fs::path file = fs::path(dir) / "adapter_model.safetensors";
  DIST_CHECK(fs::exists(file), dir, ": no adapter_model.safetensors",
             fs::exists(fs::path(dir) / "adapter_model.bin") ? " (adapter_model.bin is pickle; save the adapter with "
                                                               "safe_serialization=True)"
                                                             : "");
  SafetensorsFile st(file.string());
  torch::NoGradGuard no_grad;
  const auto shards = parallel::tp_shard_map(*model);
  const auto& mp = model->parallel();
  std::set<std::string> used;
  for (auto& t : peft_local_tensors(model, cfg)) {
    const std::string& name = t.peft_name;
    DIST_CHECK(st.contains(name), file.string(), ": missing tensor '", name, "'");
    const auto& e = st.entries().at(name);
    const auto s = parallel::shard_of(shards, t.model_name);
    const auto expected = parallel::full_shape(t.tensor, s);
    DIST_CHECK(e.shape == expected, file.string(), ": tensor '", name, "' has shape ", c10::IntArrayRef(e.shape),
               " but the model expects ", c10::IntArrayRef(expected), " (r=", cfg.r, ")");
    check_loadable_dtype(e.dtype, t.tensor.scalar_type(), file.string(), name);
    t.tensor.copy_(parallel::local_slice(st.view(name), s).to(t.tensor.scalar_type()));
    check_finite(t.tensor, file.string(), name);
    used.insert(name);
  }
  for (const auto& kv : st.entries()) {
    if (used.count(kv.first)) continue;
    // Adapters of experts another ep rank holds.
    const auto en = parallel::parse_expert_name(kv.first);
    if (en.expert >= 0 && mp.ep_size() > 1) {
      if (used.count(en.with_expert(kv.first, mp.ep_rank() * model->experts_per_rank()))) continue;
    }
    DIST_FAIL(file.string(), ": unexpected tensor '", kv.first,
              "' (not an adapter of this model under adapter_config.json)");
  }
}

}  // namespace distillery
