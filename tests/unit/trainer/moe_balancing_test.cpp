// MoE balancing in the loop (trainer/moe_balancing.h), through SFT of tiny MoE models: the router
// losses join the loss with a split-invariant normalization, and the routing statistics reach
// metrics.jsonl.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/synthetic.h"
#include "tests/unit/moe_test_util.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "models/hf_model.h"
#include "trainer/loop.h"

using namespace distillery;
using distillery::testing::TempDir;
using distillery::testing::tiny_moe_config;
namespace fs = std::filesystem;

namespace moe_sft_test {

namespace {

// A byte-level tiny MoE model of `family` and arithmetic data in `dir`; returns a recipe for them.
RecipeConfig moe_run(const TempDir& dir, const std::string& family, const std::string& run_name) {
  const std::string model = dir / (family + "-model");
  if (!fs::exists(model)) {
    auto j = tiny_moe_config(family);
    j["vocab_size"] = 256;
    CausalLM m(TransformerConfig::from_json(j, "c"));
    m->init_weights(11);
    save_hf_model(m, model, "", torch::kFloat32, int64_t{1} << 30);
  }
  if (!fs::exists(dir / "train.jsonl")) {
    std::string text;
    for (const auto& r : make_task("arithmetic", 64, 2, 3)) text += byte_level_tokenized(r).dump() + "\n";
    write_text_file(dir / "train.jsonl", text);
  }
  RecipeConfig cfg;
  cfg.model.path = model;
  cfg.data.train = dir / "train.jsonl";
  cfg.data.max_seq_len = 48;
  cfg.optim.lr = 3e-3;
  cfg.optim.warmup_steps = 2;
  cfg.trainer.output_dir = dir / run_name;
  cfg.trainer.max_steps = 4;
  cfg.trainer.micro_batch_size = 2;
  cfg.trainer.grad_accum_steps = 2;
  cfg.trainer.resume = "none";
  return cfg;
}

std::vector<nlohmann::json> metrics(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

void train(const RecipeConfig& cfg) { Trainer(cfg, std::make_shared<parallel::LocalCommunicator>()).run(); }

}  // namespace

TEST(MoeSft, DeepseekV3LossFallsAndMetricsReportRouting) {
  TempDir dir;
  auto cfg = moe_run(dir, "deepseek_v3", "run");
  cfg.trainer.max_steps = 30;
  cfg.optim.lr = 1e-2;
  cfg.moe.aux_loss_coef = 0.01;
  cfg.moe.z_loss_coef = 1e-3;
  train(cfg);
  auto m = metrics(cfg.trainer.output_dir);
  ASSERT_EQ(m.size(), 30u);
  EXPECT_LT(m.back()["loss"].get<double>(), 0.6 * m.front()["loss"].get<double>());
  for (const char* k : {"moe_aux_loss", "moe_z_loss", "moe_load_max_over_mean", "moe_load_min_over_mean"})
    ASSERT_TRUE(m.front().contains(k)) << k;
  // aux = k (2) for uniform routing; the busiest expert is at least the mean, the idlest at most.
  EXPECT_GT(m.front()["moe_aux_loss"].get<double>(), 1.0);
  EXPECT_GE(m.front()["moe_load_max_over_mean"].get<double>(), 1.0);
  EXPECT_LE(m.front()["moe_load_min_over_mean"].get<double>(), 1.0);
  EXPECT_GT(m.front()["moe_z_loss"].get<double>(), 0.0);
  auto final_model = load_hf_model(cfg.trainer.output_dir + "/final");
  EXPECT_EQ(final_model->config().model_type, "deepseek_v3");
}

TEST(MoeSft, RouterLossesAreAddedWithTheirCoefficients) {
  // One step from the same weights: the loss differences are exactly coef * reported value.
  TempDir dir;
  auto base = moe_run(dir, "mixtral", "base");
  base.trainer.max_steps = 1;
  base.moe.aux_loss_coef = 0;
  auto by_config = moe_run(dir, "mixtral", "config");  // aux_loss_coef < 0: config.json's 0.02
  by_config.trainer.max_steps = 1;
  auto explicit_coefs = moe_run(dir, "mixtral", "explicit");
  explicit_coefs.trainer.max_steps = 1;
  explicit_coefs.moe.aux_loss_coef = 0.5;
  explicit_coefs.moe.z_loss_coef = 0.25;
  train(base), train(by_config), train(explicit_coefs);
  auto b = metrics(base.trainer.output_dir)[0], c = metrics(by_config.trainer.output_dir)[0],
       e = metrics(explicit_coefs.trainer.output_dir)[0];
  const double aux = b["moe_aux_loss"].get<double>(), z = b["moe_z_loss"].get<double>();
  EXPECT_NEAR(c["loss"].get<double>() - b["loss"].get<double>(), 0.02 * aux, 1e-6);
  EXPECT_NEAR(e["loss"].get<double>() - b["loss"].get<double>(), 0.5 * aux + 0.25 * z, 1e-6);
  EXPECT_NEAR(c["moe_aux_loss"].get<double>(), aux, 1e-9);
}

TEST(MoeSft, MicroBatchSplitDoesNotChangeTheRunWithRouterLosses) {
  TempDir dir;
  auto a = moe_run(dir, "qwen2_moe", "a");  // 2 x 2
  a.moe.aux_loss_coef = 0.1;
  a.moe.z_loss_coef = 0.01;
  auto b = a, c = a;
  b.trainer.output_dir = dir / "b", b.trainer.micro_batch_size = 4, b.trainer.grad_accum_steps = 1;
  c.trainer.output_dir = dir / "c", c.trainer.micro_batch_size = 1, c.trainer.grad_accum_steps = 4;
  train(a), train(b), train(c);
  auto ma = metrics(a.trainer.output_dir), mb = metrics(b.trainer.output_dir), mc = metrics(c.trainer.output_dir);
  ASSERT_EQ(ma.size(), 4u);
  for (size_t i = 0; i < ma.size(); ++i)
    for (const char* k : {"loss", "moe_aux_loss", "moe_z_loss"}) {
      EXPECT_NEAR(ma[i][k].get<double>(), mb[i][k].get<double>(), 1e-5) << k << " step " << i + 1;
      EXPECT_NEAR(ma[i][k].get<double>(), mc[i][k].get<double>(), 1e-5) << k << " step " << i + 1;
    }
}

TEST(MoeSft, CorrectionBiasMovesTowardBalanceByTheRatePerStep) {
  // deepseek_v3: after every step each layer's bias moves by exactly +-rate (or 0 at the mean).
  TempDir dir;
  auto cfg = moe_run(dir, "deepseek_v3", "bias");
  cfg.moe.bias_update_rate = 0.01;
  cfg.trainer.max_steps = 3;
  train(cfg);
  auto before = load_hf_model(cfg.model.path), after = load_hf_model(cfg.trainer.output_dir + "/final");
  const std::string name = "model.layers.1.mlp.gate.e_score_correction_bias";
  auto b0 = before->named_buffers()[name], b1 = after->named_buffers()[name];
  auto steps = (b1 - b0) / 0.01;  // sum of 3 signs per expert
  EXPECT_TRUE(torch::allclose(steps, steps.round(), 0, 1e-4)) << steps;
  EXPECT_LE(steps.abs().max().item<double>(), 3.0 + 1e-4);
  EXPECT_GT(steps.abs().sum().item<double>(), 0.0);
  // Over-used experts go down, so the biases cannot all move the same way.
  EXPECT_LT(steps.min().item<double>(), 0.0);
  EXPECT_GT(steps.max().item<double>(), 0.0);
}

TEST(MoeSft, CorrectionBiasUpdateNeedsAModelWithTheBias) {
  TempDir dir;
  auto cfg = moe_run(dir, "qwen3_moe", "nobias");
  cfg.moe.bias_update_rate = 0.01;
  try {
    train(cfg);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("moe.bias_update_rate=0.01: model_type qwen3_moe has no"), std::string::npos)
        << e.what();
  }
}

}  // namespace moe_sft_test
