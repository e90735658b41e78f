// A tiny byte-level qwen2 model and an arithmetic SFT data set on disk, and a recipe for them:
// the fixture of the trainer tests (single- and multi-rank).
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/synthetic.h"
#include "tests/unit/test_util.h"
#include "common/fs_util.h"
#include "models/hf_model.h"
#include "trainer/recipe.h"

namespace distillery::testing {

inline void write_tiny_sft_inputs(const std::string& dir) {
  auto j = tiny_config("qwen2");
  j["vocab_size"] = 256;
  CausalLM m(TransformerConfig::from_json(j, "c"));
  m->init_weights(11);
  save_hf_model(m, dir + "/model", "", torch::kFloat32, int64_t{1} << 30);
  std::string text;
  for (const auto& r : make_task("arithmetic", 64, 2, 3)) text += byte_level_tokenized(r).dump() + "\n";
  write_text_file(dir + "/train.jsonl", text);
}

inline RecipeConfig tiny_sft_recipe(const std::string& dir, const std::string& run_name) {
  RecipeConfig cfg;
  cfg.model.path = dir + "/model";
  cfg.data.train = dir + "/train.jsonl";
  cfg.data.max_seq_len = 48;
  cfg.optim.lr = 3e-3;
  cfg.optim.warmup_steps = 2;
  cfg.optim.weight_decay = 0.01;
  cfg.trainer.output_dir = dir + "/" + run_name;
  cfg.trainer.max_steps = 6;
  cfg.trainer.micro_batch_size = 2;
  cfg.trainer.grad_accum_steps = 2;
  cfg.trainer.resume = "none";
  return cfg;
}

inline std::vector<double> metric_column(const std::string& run_dir, const std::string& key = "loss") {
  std::vector<double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line)[key].get<double>());
  return out;
}

}  // namespace distillery::testing
