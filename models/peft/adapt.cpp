#include "models/peft/adapt.h"

#include <filesystem>
#include <sstream>

#include "models/peft/peft_format.h"
#include "common/error.h"
#include "models/hf_model.h"

namespace distillery {
namespace fs = std::filesystem;

namespace adapt_detail {

// Each key of a LoraConfig with its value as text, in declaration order (one visitor for all keys).
struct KeyTexts {
  std::vector<std::pair<std::string, std::string>> items;
  template <class T>
  void operator()(const char* key, T& f, const char*, config::Rule = {}) {
    items.emplace_back(key, text(f));
  }
  static std::string text(bool v) { return v ? "true" : "false"; }
  static std::string text(int64_t v) { return std::to_string(v); }
  static std::string text(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }
  static std::string text(const std::string& v) { return v; }
  static std::string text(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s + "]";
  }
};

std::vector<std::pair<std::string, std::string>> key_texts(LoraConfig c) {
  KeyTexts k;
  c.visit(k);
  return k.items;
}

}  // namespace adapt_detail

LoraConfig resolve_lora_config(const LoraConfig& section) {
  if (section.adapter.empty()) return section;
  LoraConfig file = read_peft_adapter_config(section.adapter);
  file.adapter = section.adapter;
  const auto mine = adapt_detail::key_texts(section), theirs = adapt_detail::key_texts(file),
             defaults = adapt_detail::key_texts(LoraConfig{});
  for (size_t i = 0; i < mine.size(); ++i) {
    if (mine[i].first == "adapter") continue;
    DIST_CHECK(mine[i].second == defaults[i].second || mine[i].second == theirs[i].second, "lora.", mine[i].first, "=",
               mine[i].second, " differs from ", section.adapter, "/adapter_config.json (", theirs[i].first, "=",
               theirs[i].second, "); leave it out to take the adapter's");
  }
  return file;
}

LoraConfig adapt_for_training(CausalLM& model, const LoraConfig& section, uint64_t seed) {
  LoraConfig cfg = resolve_lora_config(section);
  apply_lora(model, cfg, seed);
  if (!cfg.adapter.empty()) load_peft_adapter_weights(model, cfg, cfg.adapter);
  return cfg;
}

std::string lora_summary(CausalLM& model, const LoraConfig& cfg) {
  int64_t trainable = 0, total = 0;
  for (const auto& p : model->parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  std::ostringstream s;
  s << (cfg.use_dora ? "dora" : "lora") << ": r=" << cfg.r << " alpha=" << cfg.lora_alpha
    << (cfg.use_rslora ? " (rslora)" : "") << " scaling=" << cfg.scaling() << ", " << lora_modules(model).size()
    << " modules adapted" << (cfg.adapter.empty() ? "" : " from " + cfg.adapter) << ", " << trainable
    << " trainable of " << total << " parameters (" << 100.0 * trainable / std::max<int64_t>(1, total) << "%)";
  return s.str();
}

CausalLM load_adapted_model(const std::string& adapter_dir, std::string base_dir, torch::Dtype dtype,
                            const parallel::ModelParallel& mp) {
  LoraConfig cfg = read_peft_adapter_config(adapter_dir);
  cfg.adapter = adapter_dir;
  if (base_dir.empty()) base_dir = peft_base_model(adapter_dir);
  DIST_CHECK(!base_dir.empty() && fs::exists(fs::path(base_dir) / "config.json"), adapter_dir,
             "/adapter_config.json: base_model_name_or_path '", base_dir,
             "' is not a local model directory; give the base model directory explicitly");
  CausalLM model = load_hf_model(base_dir, dtype, mp);
  apply_lora(model, cfg, 0);
  load_peft_adapter_weights(model, cfg, adapter_dir);
  model->eval();
  return model;
}

}  // namespace distillery
