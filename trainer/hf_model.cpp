#include "trainer/hf_model.h"

#include <filesystem>
#include <set>

#include "trainer/error.h"
#include "trainer/fs_util.h"
#include "trainer/safetensors.h"

namespace distillery {
namespace fs = std::filesystem;

const std::vector<std::string>& hf_side_files() {
  static const std::vector<std::string> files = {
      "generation_config.json", "tokenizer.json",      "tokenizer_config.json", "special_tokens_map.json",
      "vocab.json",             "merges.txt",          "tokenizer.model",       "chat_template.jinja",
      "added_tokens.json"};
  return files;
}

torch::Dtype parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "fp16" || name == "float16") return torch::kFloat16;
  DIST_FAIL("unknown dtype '", name, "' (expected fp32, bf16 or fp16)");
}

std::string hf_dtype_name(torch::Dtype dtype) {
  if (dtype == torch::kBFloat16) return "bfloat16";
  if (dtype == torch::kFloat16) return "float16";
  return "float32";
}

void load_hf_weights(CausalLM& model, const std::string& dir) {
  auto set = SafetensorsSet::open_dir(dir);
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& np : model->named_parameters()) {
    const std::string& name = np.key();
    auto& p = np.value();
    DIST_CHECK(set.contains(name), set.describe(), ": missing tensor '", name, "' (model_type ",
               model->config().model_type, ")");
    const auto& e = set.entry(name);
    DIST_CHECK(e.shape == p.sizes().vec(), set.describe(), ": tensor '", name, "' has shape ",
               c10::IntArrayRef(e.shape), ", expected ", p.sizes(), " from config.json");
    p.copy_(set.load(name, p.scalar_type()));
    used.insert(name);
  }
  for (const auto& name : set.names()) {
    if (used.count(name)) continue;
    // Tied checkpoints sometimes still carry lm_head; old ones carry rotary tables. Both are derived.
    if (name == "lm_head.weight" && model->config().tie_word_embeddings) continue;
    if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    DIST_FAIL(set.describe(), ": unexpected tensor '", name, "' for model_type ", model->config().model_type);
  }
}

CausalLM load_hf_model(const std::string& dir, torch::Dtype dtype) {
  CausalLM model(TransformerConfig::load(dir));
  load_hf_weights(model, dir);
  model->to(dtype);
  return model;
}

std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(CausalLM& model, torch::Dtype dtype) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& np : model->named_parameters()) out.emplace_back(np.key(), np.value().detach().to(dtype));
  return out;
}

void write_hf_model_files(CausalLM& model, const std::string& dir, const std::string& source_dir,
                          torch::Dtype dtype, int64_t max_shard_bytes) {
  fs::create_directories(dir);
  nlohmann::json cfg = model->config().raw;
  cfg["torch_dtype"] = hf_dtype_name(dtype);
  write_json_file((fs::path(dir) / "config.json").string(), cfg);
  save_safetensors_dir(dir, hf_state_dict(model, dtype), max_shard_bytes);
  if (!source_dir.empty())
    for (const auto& f : hf_side_files()) {
      const fs::path src = fs::path(source_dir) / f;
      if (fs::exists(src)) fs::copy_file(src, fs::path(dir) / f, fs::copy_options::overwrite_existing);
    }
}

void save_hf_model(CausalLM& model, const std::string& out_dir, const std::string& source_dir,
                   torch::Dtype dtype, int64_t max_shard_bytes) {
  const std::string tmp = out_dir + ".tmp";
  fs::remove_all(tmp);
  write_hf_model_files(model, tmp, source_dir, dtype, max_shard_bytes);
  commit_dir(tmp, out_dir);
}

}  // namespace distillery
