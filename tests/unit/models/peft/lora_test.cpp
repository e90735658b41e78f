#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "models/peft/adapt.h"
#include "models/peft/lora.h"
#include "models/peft/merge.h"
#include "models/peft/peft_format.h"
#include "models/peft/target_modules.h"
#include "data/synthetic.h"
#include "tests/unit/test_util.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "models/hf_model.h"
#include "trainer/loop.h"
#include "trainer/optim.h"
#include "common/safetensors.h"

using namespace distillery;
using distillery::testing::TempDir;
using distillery::testing::tiny_config;
namespace fs = std::filesystem;

namespace lora_test {

// qwen2: q/k/v carry a bias, so DoRA's bias handling is exercised.
CausalLM qwen2(uint64_t seed = 1) {
  CausalLM m(TransformerConfig::from_json(tiny_config("qwen2"), "config.json"));
  m->init_weights(seed);
  return m;
}

torch::Tensor ids(int64_t b = 2, int64_t t = 7) {
  auto gen = at::detail::createCPUGenerator(5);
  return torch::randint(0, 97, {b, t}, gen, torch::kInt64);
}

torch::Tensor logits_of(CausalLM& m, const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  return m->logits(m->forward({input}));
}

LoraConfig lora_cfg(int64_t r, std::vector<std::string> targets, bool dora = false) {
  LoraConfig c;
  c.r = r;
  c.lora_alpha = 16;
  c.target_modules = std::move(targets);
  c.use_dora = dora;
  return c;
}

// Gives every adapter non-zero B (and a magnitude off the norm), as training would.
void perturb(CausalLM& m, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& [name, lin, a] : lora_modules(m)) {
    a->lora_B.copy_(at::normal(0.0, 0.05, a->lora_B.sizes(), gen));
    if (a->use_dora()) a->lora_magnitude_vector.mul_(1.0 + at::normal(0.0, 0.1, a->lora_magnitude_vector.sizes(), gen));
  }
}

std::map<std::string, torch::Tensor> snapshot(CausalLM& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& p : m->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "<no UserError>";
}

// A byte-level qwen2 base model and arithmetic SFT data in `dir`, and a LoRA recipe for them.
RecipeConfig lora_run(const TempDir& dir, const std::string& run_name) {
  if (!fs::exists(dir / "model")) {
    auto j = tiny_config("qwen2");
    j["vocab_size"] = 256;
    CausalLM m(TransformerConfig::from_json(j, "c"));
    m->init_weights(11);
    save_hf_model(m, dir / "model", "", torch::kFloat32, int64_t{1} << 30);
    write_text_file(dir / "model/tokenizer_config.json", "{}");
    std::string text;
    for (const auto& r : make_task("arithmetic", 64, 2, 3)) text += byte_level_tokenized(r).dump() + "\n";
    write_text_file(dir / "train.jsonl", text);
  }
  RecipeConfig cfg;
  cfg.model.path = dir / "model";
  cfg.data.train = dir / "train.jsonl";
  cfg.data.max_seq_len = 48;
  cfg.optim.lr = 1e-2;
  cfg.optim.warmup_steps = 2;
  cfg.trainer.output_dir = dir / run_name;
  cfg.trainer.max_steps = 6;
  cfg.trainer.micro_batch_size = 2;
  cfg.trainer.grad_accum_steps = 2;
  cfg.trainer.resume = "none";
  cfg.lora.r = 4;
  cfg.lora.lora_alpha = 8;
  cfg.lora.lora_dropout = 0.1;
  cfg.lora.target_modules = {kAllLinear};
  return cfg;
}

std::vector<double> run_losses(const std::string& run_dir) {
  std::vector<double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line)["loss"].get<double>());
  return out;
}

TrainResult run_trainer(const RecipeConfig& cfg) {
  Trainer t(cfg, std::make_shared<parallel::LocalCommunicator>());
  return t.run();
}

std::set<std::string> tensor_names(const std::string& file) {
  SafetensorsFile f(file);
  std::set<std::string> out;
  for (const auto& kv : f.entries()) out.insert(kv.first);
  return out;
}

}  // namespace lora_test

using namespace lora_test;

TEST(LoraAdapter, FreshAdapterLeavesLogitsUnchanged) {
  for (bool dora : {false, true}) {
    auto m = qwen2();
    auto input = ids();
    auto before = logits_of(m, input);
    apply_lora(m, lora_cfg(4, {kAllLinear}, dora), 3);
    EXPECT_TRUE(torch::equal(before, logits_of(m, input))) << "dora=" << dora;
  }
}

TEST(LoraAdapter, InitIsPeftsKaimingUniformAndSeeded) {
  auto a = qwen2(), b = qwen2(), c = qwen2();
  apply_lora(a, lora_cfg(8, {"q_proj"}), 7);
  apply_lora(b, lora_cfg(8, {"q_proj"}), 7);
  apply_lora(c, lora_cfg(8, {"q_proj"}), 8);
  auto la = lora_modules(a), lb = lora_modules(b), lc = lora_modules(c);
  ASSERT_EQ(la.size(), 2u);
  auto* A = std::get<2>(la[0]);
  EXPECT_EQ(A->lora_A.sizes(), (torch::IntArrayRef{8, 32}));
  EXPECT_EQ(A->lora_B.sizes(), (torch::IntArrayRef{4 * 8, 8}));
  EXPECT_EQ(A->lora_A.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(A->lora_B, torch::zeros_like(A->lora_B)));
  // kaiming_uniform_(a=sqrt(5)) on [r, in] is U(-1/sqrt(in), 1/sqrt(in)).
  const double bound = 1.0 / std::sqrt(32.0);
  EXPECT_LE(A->lora_A.abs().max().item<double>(), bound);
  EXPECT_GT(A->lora_A.abs().max().item<double>(), 0.9 * bound);
  EXPECT_NEAR(A->lora_A.pow(2).mean().item<double>(), bound * bound / 3, 0.25 * bound * bound / 3);
  EXPECT_TRUE(torch::equal(A->lora_A, std::get<2>(lb[0])->lora_A));
  EXPECT_FALSE(torch::equal(A->lora_A, std::get<2>(lc[0])->lora_A));
  EXPECT_FALSE(torch::equal(A->lora_A, std::get<2>(la[1])->lora_A));  // each layer draws its own
}

TEST(LoraAdapter, RsloraScalesByAlphaOverSqrtR) {
  LoraConfig c = lora_cfg(16, {"v_proj"});
  c.lora_alpha = 8;
  EXPECT_DOUBLE_EQ(c.scaling(), 0.5);
  c.use_rslora = true;
  EXPECT_DOUBLE_EQ(c.scaling(), 2.0);
  // The forward adds exactly scaling * B A x.
  auto m = qwen2();
  apply_lora(m, c, 1);
  perturb(m, 2);
  auto [name, lin, a] = lora_modules(m)[0];
  auto x = torch::randn({3, 32});
  auto expected = lin->base_forward(x) + 2.0 * torch::matmul(torch::matmul(x, a->lora_A.t()), a->lora_B.t());
  EXPECT_TRUE(torch::allclose(lin->forward(x), expected, 1e-6, 1e-6));
}

TEST(LoraAdapter, DoraMatchesHandComputation) {
  // One 3 -> 2 layer with a bias; numbers chosen by hand.
  Linear lin(3, 2, true);
  torch::NoGradGuard no_grad;
  lin->weight.copy_(torch::tensor({{1.0f, 2.0f, 2.0f}, {0.0f, 3.0f, 4.0f}}));  // row norms 3 and 5
  lin->bias.copy_(torch::tensor({0.5f, -1.0f}));
  auto gen = at::detail::createCPUGenerator(0);
  auto dora = std::make_shared<LoraAdapter>(*lin, /*r=*/1, /*scaling=*/2.0, 0.0, /*use_dora=*/true, gen);
  EXPECT_TRUE(torch::allclose(dora->lora_magnitude_vector, torch::tensor({3.0f, 5.0f})));
  dora->lora_A.copy_(torch::tensor({{1.0f, 0.0f, -1.0f}}));
  dora->lora_B.copy_(torch::tensor({{0.5f}, {1.0f}}));
  dora->lora_magnitude_vector.copy_(torch::tensor({6.0f, 4.0f}));
  lin->attach_adapter(kLoraChild, dora);
  // W + 2 B A = [[2, 2, 1], [2, 3, 2]]: row norms 3 and sqrt(17). Output = m / norm * (W' x) + b.
  const double w[2][3] = {{2, 2, 1}, {2, 3, 2}};
  const double norm[2] = {3.0, std::sqrt(17.0)}, mag[2] = {6.0, 4.0}, bias[2] = {0.5, -1.0};
  const double x[2][3] = {{1, -1, 2}, {0.5, 0.25, -3}};
  auto out = lin->forward(torch::tensor({{1.0f, -1.0f, 2.0f}, {0.5f, 0.25f, -3.0f}}));
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < 2; ++o) {
      double wx = 0;
      for (int i = 0; i < 3; ++i) wx += w[o][i] * x[n][i];
      EXPECT_NEAR(out[n][o].item<double>(), mag[o] / norm[o] * wx + bias[o], 1e-5) << n << "," << o;
    }
  // The merged weight is (m / norm) * W'; the bias is left alone.
  auto merged = dora->merged_weight(*lin);
  for (int o = 0; o < 2; ++o)
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(merged[o][i].item<double>(), mag[o] / norm[o] * w[o][i], 1e-5);
}

TEST(LoraAdapter, DoraNormIsDetachedFromTheGraph) {
  // d(sum y)/dm_o = sum_n (W' x_n)_o / norm_o, and B's gradient treats the norm as a constant:
  // d(sum y)/dB = sum_n (m / norm)_o * s * (A x_n).
  Linear lin(4, 3, false);
  {
    torch::NoGradGuard no_grad;
    lin->weight.copy_(torch::randn({3, 4}, at::detail::createCPUGenerator(1)));
  }
  lin->weight.requires_grad_(false);
  auto gen = at::detail::createCPUGenerator(2);
  auto dora = std::make_shared<LoraAdapter>(*lin, 2, 0.5, 0.0, true, gen);
  {
    torch::NoGradGuard no_grad;
    dora->lora_B.copy_(torch::randn({3, 2}, at::detail::createCPUGenerator(3)));
  }
  lin->attach_adapter(kLoraChild, dora);
  auto x = torch::randn({5, 4}, at::detail::createCPUGenerator(4));
  lin->forward(x).sum().backward();
  torch::NoGradGuard no_grad;
  auto wp = lin->weight + 0.5 * torch::matmul(dora->lora_B, dora->lora_A);
  auto norm = wp.norm(2, {1});
  auto expect_m = torch::matmul(x, wp.t()).sum(0) / norm;
  EXPECT_TRUE(torch::allclose(dora->lora_magnitude_vector.grad(), expect_m, 1e-5, 1e-5));
  auto ax = torch::matmul(x, dora->lora_A.t()).sum(0);  // [r]
  auto expect_b = torch::outer(dora->lora_magnitude_vector / norm, ax) * 0.5;
  EXPECT_TRUE(torch::allclose(dora->lora_B.grad(), expect_b, 1e-5, 1e-5));
}

TEST(LoraAdapter, DropoutOnlyInTraining) {
  auto m = qwen2();
  auto c = lora_cfg(4, {"q_proj"});
  c.lora_dropout = 0.5;
  apply_lora(m, c, 1);
  perturb(m, 3);
  auto [name, lin, a] = lora_modules(m)[0];
  auto x = torch::randn({4, 32});
  m->eval();
  auto e1 = lin->forward(x), e2 = lin->forward(x);
  EXPECT_TRUE(torch::equal(e1, e2));
  m->train();
  auto t1 = lin->forward(x);
  EXPECT_FALSE(torch::allclose(t1, e1));
  EXPECT_FALSE(torch::equal(t1, lin->forward(x)));  // a fresh mask each call
  // Dropout touches the adapter's input only: with B = 0 the training output is exactly the base's.
  {
    torch::NoGradGuard no_grad;
    a->lora_B.zero_();
  }
  EXPECT_TRUE(torch::equal(lin->forward(x), lin->base_forward(x)));
}

TEST(LoraTargets, ListRegexAndAllLinear) {
  auto names = [](CausalLM m, std::vector<std::string> t) {
    auto applied = apply_lora(m, lora_cfg(2, std::move(t)), 0);
    return applied.adapted;
  };
  EXPECT_EQ(names(qwen2(), {"q_proj", "v_proj"}),
            (std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                                      "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"}));
  // One regex, matched against the whole name (re.fullmatch).
  EXPECT_EQ(names(qwen2(), {R"(model\.layers\.1\.self_attn\.(q|k)_proj)"}),
            (std::vector<std::string>{"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj"}));
  EXPECT_EQ(names(qwen2(), {R"(.*mlp\.(up|down)_proj)"}).size(), 4u);
  auto all = names(qwen2(), {kAllLinear});
  EXPECT_EQ(all.size(), 14u);  // 7 per layer, lm_head excluded
  EXPECT_EQ(std::count(all.begin(), all.end(), "lm_head"), 0);
  EXPECT_EQ(names(qwen2(), {"lm_head"}), (std::vector<std::string>{"lm_head"}));
  EXPECT_TRUE(lora::entry_matches("q_proj", "model.layers.0.self_attn.q_proj"));
  EXPECT_FALSE(lora::entry_matches("proj", "model.layers.0.self_attn.q_proj"));  // suffix at a "." only
  EXPECT_FALSE(lora::entry_matches(R"(self_attn\.q_proj)", "model.layers.0.self_attn.q_proj"));  // fullmatch
}

TEST(LoraTargets, EntryMatchingNothingListsTheLinearModules) {
  auto msg = error_of([] {
    auto m = qwen2();
    apply_lora(m, lora_cfg(2, {"q_proj", "qproj"}), 0);
  });
  EXPECT_NE(msg.find("lora.target_modules: 'qproj' matches no linear module"), std::string::npos) << msg;
  EXPECT_NE(msg.find("q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head"), std::string::npos)
      << msg;
  msg = error_of([] {
    auto m = qwen2();
    apply_lora(m, lora_cfg(2, {R"(.*attn\.x_proj)"}), 0);
  });
  EXPECT_NE(msg.find("matches no linear module"), std::string::npos) << msg;
  msg = error_of([] {
    auto m = qwen2();
    auto c = lora_cfg(2, {"q_proj"});
    c.modules_to_save = {"lm_heads"};
    apply_lora(m, c, 0);
  });
  EXPECT_NE(msg.find("lora.modules_to_save: 'lm_heads' matches no module"), std::string::npos) << msg;
}

TEST(LoraFreezing, OnlyAdaptersTrainAndTheOptimizerHoldsOnlyThem) {
  auto m = qwen2();
  auto c = lora_cfg(4, {kAllLinear}, /*dora=*/true);
  c.lora_dropout = 0.1;
  auto applied = apply_lora(m, c, 1);
  const auto before = snapshot(m);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (auto& p : m->named_parameters()) named.emplace_back(p.key(), p.value());
  OptimConfig oc;
  oc.lr = 1e-2;
  AdamW opt(named, oc);
  ASSERT_EQ(opt.slots().size(), 14u * 3);  // A, B, magnitude per adapted module
  for (const auto& s : opt.slots()) EXPECT_NE(s.name.find(".lora.lora_"), std::string::npos) << s.name;
  EXPECT_EQ(applied.trainable, [&] {
    int64_t n = 0;
    for (const auto& s : opt.slots()) n += s.param.numel();
    return n;
  }());
  m->train();
  auto input = ids(2, 9);
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    auto h = m->forward({input});
    auto loss = torch::nn::functional::cross_entropy(m->logits(h).view({-1, 97}), input.view({-1}));
    loss.backward();
    opt.step(1e-2);
  }
  for (auto& p : m->named_parameters()) {
    const bool adapter = p.key().find(".lora.") != std::string::npos;
    if (adapter) {
      if (p.key().find("lora_B") != std::string::npos || p.key().find("magnitude") != std::string::npos)
        EXPECT_FALSE(torch::equal(p.value(), before.at(p.key()))) << p.key();
    } else {
      EXPECT_TRUE(torch::equal(p.value(), before.at(p.key()))) << p.key();
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
    }
  }
}

TEST(LoraFreezing, Bf16BaseWithFp32Adapters) {
  auto m = qwen2();
  m->to(torch::kBFloat16);
  apply_lora(m, lora_cfg(4, {"q_proj", "down_proj"}, true), 1);
  perturb(m, 1);
  for (auto& [name, lin, a] : lora_modules(m)) {
    EXPECT_EQ(lin->weight.scalar_type(), torch::kBFloat16);
    EXPECT_EQ(a->lora_A.scalar_type(), torch::kFloat32);
    EXPECT_EQ(a->lora_magnitude_vector.scalar_type(), torch::kFloat32);
  }
  auto h = m->forward({ids()});
  EXPECT_EQ(h.scalar_type(), torch::kBFloat16);
  m->logits(h).sum().backward();
  for (auto& [name, lin, a] : lora_modules(m)) EXPECT_TRUE(a->lora_A.grad().defined());
}

TEST(LoraMerge, MergedLogitsEqualAdaptedLogits) {
  for (bool dora : {false, true}) {
    auto m = qwen2();
    auto input = ids();
    apply_lora(m, lora_cfg(4, {R"(.*_proj|lm_head)"}, dora), 1);  // every linear, lm_head included
    perturb(m, 9);
    m->eval();
    auto adapted = logits_of(m, input);
    merge_lora(m);
    EXPECT_TRUE(lora_modules(m).empty());
    auto merged = logits_of(m, input);
    EXPECT_TRUE(torch::allclose(adapted, merged, 1e-5, 1e-5))
        << "dora=" << dora << " max diff " << (adapted - merged).abs().max().item<double>();
    std::set<std::string> names;
    for (auto& p : m->named_parameters()) names.insert(p.key());
    EXPECT_EQ(names.size(), 1u + 2 * (3 + 1 + 3 + 2 + 3) + 1 + 1);  // a plain model again
  }
}

TEST(PeftFormat, TensorNamesAndConfigFieldsArePefts) {
  TempDir dir;
  auto m = qwen2();
  auto c = lora_cfg(4, {"q_proj", "v_proj"}, /*dora=*/true);
  c.modules_to_save = {"lm_head"};
  c.lora_dropout = 0.05;
  apply_lora(m, c, 1);
  save_peft_adapter(m, c, dir / "adapter", "Qwen/Qwen2.5-0.5B");
  std::set<std::string> expected;
  for (int l = 0; l < 2; ++l)
    for (const char* p : {"q_proj", "v_proj"}) {
      const std::string base = "base_model.model.model.layers." + std::to_string(l) + ".self_attn." + p;
      expected.insert(base + ".lora_A.weight");
      expected.insert(base + ".lora_B.weight");
      expected.insert(base + ".lora_magnitude_vector");
    }
  expected.insert("base_model.model.lm_head.weight");
  EXPECT_EQ(tensor_names(dir / "adapter/adapter_model.safetensors"), expected);
  auto j = read_json_file(dir / "adapter/adapter_config.json");
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["base_model_name_or_path"], "Qwen/Qwen2.5-0.5B");
  EXPECT_EQ(j["r"], 4);
  EXPECT_TRUE(j["lora_alpha"].is_number_integer());
  EXPECT_EQ(j["lora_alpha"], 16);
  EXPECT_EQ(j["lora_dropout"], 0.05);
  EXPECT_EQ(j["target_modules"], nlohmann::json({"q_proj", "v_proj"}));
  EXPECT_EQ(j["modules_to_save"], nlohmann::json({"lm_head"}));
  EXPECT_EQ(j["use_dora"], true);
  EXPECT_EQ(j["use_rslora"], false);
  EXPECT_EQ(j["bias"], "none");
  EXPECT_EQ(j["fan_in_fan_out"], false);
  EXPECT_EQ(j["init_lora_weights"], true);
  EXPECT_EQ(j["inference_mode"], true);
  // all-linear is written as the names it selected, a regex as a string.
  auto m2 = qwen2();
  apply_lora(m2, lora_cfg(2, {kAllLinear}), 1);
  EXPECT_EQ(peft_adapter_config(m2, lora_cfg(2, {kAllLinear}), "b")["target_modules"],
            nlohmann::json({"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}));
  EXPECT_EQ(peft_adapter_config(m2, lora_cfg(2, {".*q_proj"}), "b")["target_modules"], ".*q_proj");
}

TEST(PeftFormat, SaveLoadRoundTrip) {
  TempDir dir;
  auto m = qwen2();
  auto c = lora_cfg(4, {kAllLinear}, true);
  c.modules_to_save = {"embed_tokens"};
  apply_lora(m, c, 1);
  perturb(m, 4);
  {
    torch::NoGradGuard no_grad;
    m->model->embed_tokens->weight.add_(0.01);
  }
  m->eval();
  save_peft_adapter(m, c, dir / "adapter", "");
  auto input = ids();
  auto expected = logits_of(m, input);

  auto fresh = qwen2();  // the same base
  auto read = read_peft_adapter_config(dir / "adapter");
  EXPECT_EQ(read.r, 4);
  EXPECT_TRUE(read.use_dora);
  EXPECT_EQ(read.modules_to_save, (std::vector<std::string>{"embed_tokens"}));
  apply_lora(fresh, read, 99);
  load_peft_adapter_weights(fresh, read, dir / "adapter");
  fresh->eval();
  EXPECT_TRUE(torch::equal(expected, logits_of(fresh, input)));
}

TEST(PeftFormat, LoadsAnAdapterAsPeftWritesIt) {
  // adapter_config.json as PEFT 0.13 writes it (extra fields, target_modules from a set) and tensors
  // under PEFT's names.
  TempDir dir;
  fs::create_directories(dir / "peft");
  write_text_file(dir / "peft/adapter_config.json", R"({
  "alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "Qwen/Qwen2-0.5B", "bias": "none",
  "eva_config": null, "exclude_modules": null, "fan_in_fan_out": false, "inference_mode": true,
  "init_lora_weights": true, "layer_replication": null, "layers_pattern": null, "layers_to_transform": null,
  "loftq_config": {}, "lora_alpha": 32, "lora_bias": false, "lora_dropout": 0.05, "megatron_config": null,
  "megatron_core": "megatron.core", "modules_to_save": null, "peft_type": "LORA", "r": 2, "rank_pattern": {},
  "revision": null, "target_modules": ["v_proj", "q_proj"], "task_type": "CAUSAL_LM", "use_dora": false,
  "use_rslora": false})");
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  auto gen = at::detail::createCPUGenerator(3);
  for (int l = 0; l < 2; ++l)
    for (auto [p, out] : {std::pair<const char*, int64_t>{"q_proj", 32}, {"v_proj", 16}}) {
      const std::string base = "base_model.model.model.layers." + std::to_string(l) + ".self_attn." + p;
      tensors.emplace_back(base + ".lora_A.weight", at::normal(0, 0.1, {2, 32}, gen).to(torch::kBFloat16));
      tensors.emplace_back(base + ".lora_B.weight", at::normal(0, 0.1, {out, 2}, gen).to(torch::kBFloat16));
    }
  save_safetensors(dir / "peft/adapter_model.safetensors", tensors);
  auto cfg = read_peft_adapter_config(dir / "peft");
  EXPECT_DOUBLE_EQ(cfg.scaling(), 16.0);
  auto m = qwen2();
  apply_lora(m, cfg, 0);
  load_peft_adapter_weights(m, cfg, dir / "peft");
  auto [name, lin, a] = lora_modules(m)[1];
  EXPECT_EQ(name, "model.layers.0.self_attn.v_proj");
  EXPECT_TRUE(torch::equal(a->lora_B, tensors[3].second.to(torch::kFloat32)));
}

TEST(PeftFormat, ShapeMismatchNamesTensorAndBothShapes) {
  TempDir dir;
  auto m = qwen2();
  auto c4 = lora_cfg(4, {"q_proj"});
  apply_lora(m, c4, 1);
  save_peft_adapter(m, c4, dir / "a", "");
  auto other = qwen2();
  auto c8 = lora_cfg(8, {"q_proj"});
  apply_lora(other, c8, 1);
  auto msg = error_of([&] { load_peft_adapter_weights(other, c8, dir / "a"); });
  EXPECT_NE(msg.find("'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [4, 32] but the "
                     "model expects [8, 32]"),
            std::string::npos)
      << msg;
  // An adapter for a module this config does not adapt is reported, not silently dropped.
  auto only_layer1 = qwen2();
  auto c = lora_cfg(4, {R"(model\.layers\.0\.self_attn\.q_proj)"});
  apply_lora(only_layer1, c, 1);
  msg = error_of([&] { load_peft_adapter_weights(only_layer1, c, dir / "a"); });
  EXPECT_NE(msg.find("unexpected tensor 'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight'"),
            std::string::npos)
      << msg;
}

TEST(PeftFormat, UnsupportedConfigValueNamesTheField) {
  TempDir dir;
  auto m = qwen2();
  auto c = lora_cfg(4, {"q_proj"});
  apply_lora(m, c, 1);
  save_peft_adapter(m, c, dir / "a", "");
  auto edit = [&](const std::string& key, const nlohmann::json& value) {
    auto j = read_json_file(dir / "a/adapter_config.json");
    j[key] = value;
    write_json_file(dir / "a/adapter_config.json", j);
    return error_of([&] { read_peft_adapter_config(dir / "a"); });
  };
  EXPECT_NE(edit("fan_in_fan_out", true).find("field 'fan_in_fan_out' = true is not supported"), std::string::npos);
  edit("fan_in_fan_out", false);
  EXPECT_NE(edit("rank_pattern", {{"q_proj", 8}}).find("field 'rank_pattern'"), std::string::npos);
  edit("rank_pattern", nlohmann::json::object());
  EXPECT_NE(edit("bias", "all").find("field 'bias' = \"all\""), std::string::npos);
  edit("bias", "none");
  EXPECT_NE(edit("peft_type", "IA3").find("field 'peft_type' = \"IA3\" is not supported"), std::string::npos);
}

TEST(LoraRecipe, SectionParsesAndAdapterConflictsAreNamed) {
  auto cfg = parse_recipe(
      "model: {path: m}\ndata: {train: t}\ntrainer: {output_dir: o, max_steps: 1}\n"
      "lora: {r: 16, lora_alpha: 32, target_modules: all-linear, use_dora: true, modules_to_save: [lm_head]}\n",
      "r.yaml");
  EXPECT_TRUE(cfg.lora.enabled());
  EXPECT_EQ(cfg.lora.target_modules, (std::vector<std::string>{"all-linear"}));
  EXPECT_TRUE(cfg.lora.use_dora);
  EXPECT_FALSE(RecipeConfig{}.lora.enabled());
  auto msg = error_of([] {
    parse_recipe("model: {path: m}\ndata: {train: t}\ntrainer: {output_dir: o, max_steps: 1}\nlora: {rank: 8}\n",
                 "r.yaml");
  });
  EXPECT_NE(msg.find("unknown key 'lora.rank'"), std::string::npos) << msg;
  // With `adapter:`, the file defines the adapter; a recipe key that disagrees with it is an error.
  TempDir dir;
  auto m = qwen2();
  auto c = lora_cfg(4, {"q_proj"});
  apply_lora(m, c, 1);
  save_peft_adapter(m, c, dir / "a", "");
  LoraConfig section;
  section.adapter = dir / "a";
  EXPECT_EQ(resolve_lora_config(section).r, 4);
  section.r = 8;
  msg = error_of([&] { resolve_lora_config(section); });
  EXPECT_NE(msg.find("lora.r=8 differs from " + (dir / "a") + "/adapter_config.json (r=4)"), std::string::npos) << msg;
}

TEST(LoraTrainer, SftWithLoraLearnsAndSavesOnlyTheAdapter) {
  TempDir dir;
  auto cfg = lora_run(dir, "run");
  cfg.trainer.max_steps = 25;
  cfg.lora.modules_to_save = {"lm_head"};
  cfg.trainer.save_every = 10;
  run_trainer(cfg);
  auto l = run_losses(cfg.trainer.output_dir);
  ASSERT_EQ(l.size(), 25u);
  EXPECT_LT(l.back(), l.front() * 0.7);
  const std::string fin = cfg.trainer.output_dir + "/final";
  EXPECT_TRUE(fs::exists(fin + "/adapter_config.json"));
  EXPECT_TRUE(fs::exists(fin + "/tokenizer_config.json"));  // carried from the base
  EXPECT_FALSE(fs::exists(fin + "/model.safetensors"));
  const std::string ck = cfg.trainer.output_dir + "/checkpoints/step-20";
  EXPECT_TRUE(fs::exists(ck + "/adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(ck + "/model.safetensors"));
  // The optimizer state holds the adapters and modules_to_save, nothing of the frozen base.
  for (const auto& name : tensor_names(ck + "/trainer_state/optimizer.safetensors"))
    EXPECT_TRUE(name == "rng.cpu" || name.find(".lora.lora_") != std::string::npos ||
                name.rfind("lm_head.weight.", 0) == 0)
        << name;
  // Base weights on disk are untouched; the adapted model differs from the base.
  auto base = load_hf_model(cfg.model.path);
  auto adapted = load_adapted_model(fin, "", torch::kFloat32);
  EXPECT_EQ(lora_modules(adapted).size(), 14u);
  auto input = torch::randint(0, 256, {1, 12}, at::detail::createCPUGenerator(1), torch::kInt64);
  EXPECT_FALSE(torch::allclose(logits_of(base, input), logits_of(adapted, input), 1e-3, 1e-3));
  EXPECT_FALSE(torch::equal(base->lm_head->weight, adapted->lm_head->weight));
  EXPECT_TRUE(torch::equal(base->model->layers[0]->as<DecoderLayer>()->mlp->up_proj->weight,
                           adapted->model->layers[0]->as<DecoderLayer>()->mlp->up_proj->weight));

  // merge-lora: a plain HF model whose logits are the adapted model's.
  merge_lora_dirs(cfg.model.path, fin, dir / "merged", std::nullopt, int64_t{1} << 30);
  auto merged = load_hf_model(dir / "merged");
  EXPECT_TRUE(torch::allclose(logits_of(merged, input), logits_of(adapted, input), 1e-5, 1e-5));
  EXPECT_TRUE(fs::exists(dir / "merged/tokenizer_config.json"));
}

TEST(LoraTrainer, ResumedRunMatchesUninterruptedExactly) {
  TempDir dir;
  auto full = lora_run(dir, "full");
  full.lora.use_dora = true;
  full.trainer.save_every = 3;
  full.trainer.keep_last = 5;
  run_trainer(full);
  auto resumed = lora_run(dir, "resumed");
  resumed.lora.use_dora = true;
  resumed.trainer.resume = "auto";
  fs::create_directories(resumed.trainer.output_dir + "/checkpoints");
  fs::copy(full.trainer.output_dir + "/checkpoints/step-3", resumed.trainer.output_dir + "/checkpoints/step-3",
           fs::copy_options::recursive);
  run_trainer(resumed);
  auto lf = run_losses(full.trainer.output_dir), lr = run_losses(resumed.trainer.output_dir);
  ASSERT_EQ(lr.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(lf[3 + i], lr[i]) << "step " << 4 + i;
  SafetensorsFile a(full.trainer.output_dir + "/final/adapter_model.safetensors");
  SafetensorsFile b(resumed.trainer.output_dir + "/final/adapter_model.safetensors");
  ASSERT_EQ(a.entries().size(), 14u * 3);
  for (const auto& kv : a.entries()) EXPECT_TRUE(torch::equal(a.view(kv.first), b.view(kv.first))) << kv.first;
}

TEST(LoraTrainer, ContinuesFromAPeftAdapter) {
  TempDir dir;
  auto first = lora_run(dir, "first");
  first.trainer.max_steps = 3;
  run_trainer(first);
  auto second = lora_run(dir, "second");
  second.lora = LoraConfig{};
  second.lora.adapter = first.trainer.output_dir + "/final";
  second.trainer.max_steps = 1;
  second.optim.lr = 1e-12;  // one negligible step: the adapter must come through unchanged
  second.optim.warmup_steps = 0;
  run_trainer(second);
  auto cfg = read_peft_adapter_config(second.trainer.output_dir + "/final");
  EXPECT_EQ(cfg.r, 4);
  EXPECT_EQ(cfg.target_modules.size(), 7u);
  SafetensorsFile a(first.trainer.output_dir + "/final/adapter_model.safetensors");
  SafetensorsFile b(second.trainer.output_dir + "/final/adapter_model.safetensors");
  for (const auto& kv : a.entries())
    EXPECT_TRUE(torch::allclose(a.view(kv.first), b.view(kv.first), 0, 1e-9)) << kv.first;
}

namespace lora_test {

// GRPO's reference policy is the base model under the same weights: with the adapters switched off
// the adapted model's logits are the base model's exactly, and switching them back restores the
// adapted logits; modules trained in full are not adapters and stay.
TEST(AdaptersDisabled, GivesTheBaseModelAndRestoresTheAdapters) {
  for (bool dora : {false, true}) {
    CausalLM base = qwen2(3), adapted = qwen2(3);
    apply_lora(adapted, lora_cfg(4, {"all-linear"}, dora), 7);
    perturb(adapted, 11);
    auto x = ids();
    const auto want_base = logits_of(base, x), want_adapted = logits_of(adapted, x);
    ASSERT_FALSE(torch::allclose(want_base, want_adapted, 1e-4, 1e-4)) << "the adapters change nothing";
    {
      AdaptersDisabled off(adapted);
      EXPECT_TRUE(torch::equal(logits_of(adapted, x), want_base)) << "dora " << dora;
      {
        AdaptersDisabled nested(adapted);  // nothing left to switch: restores nothing early
      }
      EXPECT_TRUE(torch::equal(logits_of(adapted, x), want_base)) << "dora " << dora;
    }
    EXPECT_TRUE(torch::equal(logits_of(adapted, x), want_adapted)) << "dora " << dora;
  }
}

}  // namespace lora_test
