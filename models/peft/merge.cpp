#include "models/peft/merge.h"

#include <filesystem>

#include "models/peft/adapt.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "models/hf_model.h"

namespace distillery {
namespace fs = std::filesystem;

void merge_lora(CausalLM& model) {
  torch::NoGradGuard no_grad;
  for (auto& [name, lin, adapter] : lora_modules(model)) {
    auto merged = adapter->merged_weight(*lin);
    lin->weight.copy_(merged.to(lin->weight.scalar_type()));
    lin->detach_adapter();
  }
}

void merge_lora_dirs(const std::string& base_dir, const std::string& adapter_dir, const std::string& out_dir,
                     std::optional<torch::Dtype> dtype, int64_t max_shard_bytes) {
  CausalLM model = load_adapted_model(adapter_dir, base_dir, torch::kFloat32);
  merge_lora(model);
  if (!dtype) {
    const auto& raw = model->config().raw;
    dtype = raw.contains("torch_dtype") && raw["torch_dtype"].is_string()
                ? parse_dtype(raw["torch_dtype"].get<std::string>())
                : torch::kFloat32;
  }
  const std::string tmp = out_dir + ".tmp";
  fs::remove_all(tmp);
  write_hf_model_files(model, tmp, base_dir, *dtype, max_shard_bytes);
  // A tokenizer saved with the adapter (e.g. with added tokens) is the one the adapter was trained with.
  for (const auto& f : hf_side_files()) {
    const fs::path src = fs::path(adapter_dir) / f;
    if (fs::exists(src)) copy_file_atomic(src.string(), (fs::path(tmp) / f).string());
  }
  commit_dir(tmp, out_dir);
}

}  // namespace distillery
