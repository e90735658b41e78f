#include <gtest/gtest.h>

#include "tests/unit/packing_check.h"

#include <cmath>
#include <set>

#include "tests/unit/close_check.h"
#include "tests/unit/moe_test_util.h"
#include "cli/cli.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "models/hf_model.h"
#include "models/moe_losses.h"
#include "common/safetensors.h"
#include "models/transformer.h"

using namespace distillery;
using distillery::testing::close_rel;
using distillery::testing::TempDir;
using distillery::testing::tiny_moe_config;

namespace moe_test {

namespace {

CausalLM moe_model(const std::string& family, uint64_t seed = 1) {
  CausalLM m(TransformerConfig::from_json(tiny_moe_config(family), "config.json"));
  m->init_weights(seed);
  return m;
}

std::set<std::string> tensor_names(CausalLM& m) {
  std::set<std::string> names;
  for (auto& t : hf_named_tensors(m)) names.insert(t.first);
  return names;
}

std::vector<std::string> mlp_names(const std::string& prefix, bool w123 = false) {
  if (w123) return {prefix + ".w1.weight", prefix + ".w2.weight", prefix + ".w3.weight"};
  return {prefix + ".gate_proj.weight", prefix + ".up_proj.weight", prefix + ".down_proj.weight"};
}

void add(std::set<std::string>& s, const std::vector<std::string>& names) { s.insert(names.begin(), names.end()); }

void add_gqa(std::set<std::string>& s, const std::string& l, bool qkv_bias, bool qk_norm) {
  for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj"}) s.insert(l + ".self_attn." + p + ".weight");
  if (qkv_bias)
    for (const char* p : {"q_proj", "k_proj", "v_proj"}) s.insert(l + ".self_attn." + p + ".bias");
  if (qk_norm) add(s, {l + ".self_attn.q_norm.weight", l + ".self_attn.k_norm.weight"});
}

void add_common(std::set<std::string>& s, int layers) {
  add(s, {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"});
  for (int i = 0; i < layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i);
    add(s, {l + ".input_layernorm.weight", l + ".post_attention_layernorm.weight"});
  }
}

void add_experts(std::set<std::string>& s, const std::string& block, int n, bool w123 = false) {
  s.insert(block + ".gate.weight");
  for (int e = 0; e < n; ++e) add(s, mlp_names(block + ".experts." + std::to_string(e), w123));
}

}  // namespace

// ---------------------------------------------------------------- Hugging Face tensor names

TEST(MoeNames, MixtralIsBlockSparseMoeWithW1W2W3) {
  auto m = moe_model("mixtral");
  std::set<std::string> want;
  add_common(want, 2);
  for (int i = 0; i < 2; ++i) {
    const std::string l = "model.layers." + std::to_string(i);
    add_gqa(want, l, false, false);
    add_experts(want, l + ".block_sparse_moe", 4, /*w123=*/true);
  }
  EXPECT_EQ(tensor_names(m), want);
}

TEST(MoeNames, Qwen2MoeHasSigmoidGatedSharedExpertAndDenseLayersBySparseStep) {
  auto m = moe_model("qwen2_moe");
  std::set<std::string> want;
  add_common(want, 2);
  add_gqa(want, "model.layers.0", true, false);
  add_gqa(want, "model.layers.1", true, false);
  add(want, mlp_names("model.layers.0.mlp"));  // decoder_sparse_step 2: layer 0 is dense
  add_experts(want, "model.layers.1.mlp", 4);
  add(want, mlp_names("model.layers.1.mlp.shared_expert"));
  want.insert("model.layers.1.mlp.shared_expert_gate.weight");
  EXPECT_EQ(tensor_names(m), want);
  auto& block = m->model->layers[1]->as<DecoderLayer>()->moe;
  EXPECT_EQ(block->shared_expert->gate_proj->weight.sizes(), (std::vector<int64_t>{24, 32}));
  EXPECT_EQ(block->experts->expert(3)->down_proj->weight.sizes(), (std::vector<int64_t>{32, 16}));
}

TEST(MoeNames, Qwen3MoeHasQkNormAndMlpOnlyLayers) {
  auto m = moe_model("qwen3_moe");
  std::set<std::string> want;
  add_common(want, 2);
  add_gqa(want, "model.layers.0", false, true);
  add_gqa(want, "model.layers.1", false, true);
  add(want, mlp_names("model.layers.0.mlp"));  // mlp_only_layers [0]
  add_experts(want, "model.layers.1.mlp", 4);
  EXPECT_EQ(tensor_names(m), want);
}

TEST(MoeNames, DeepseekV3HasMlaSharedExpertsCorrectionBiasAndFirstDenseLayers) {
  auto m = moe_model("deepseek_v3");
  std::set<std::string> want;
  add_common(want, 2);
  for (int i = 0; i < 2; ++i) {
    const std::string a = "model.layers." + std::to_string(i) + ".self_attn.";
    add(want, {a + "q_a_proj.weight", a + "q_a_layernorm.weight", a + "q_b_proj.weight", a + "kv_a_proj_with_mqa.weight",
               a + "kv_a_layernorm.weight", a + "kv_b_proj.weight", a + "o_proj.weight"});
  }
  add(want, mlp_names("model.layers.0.mlp"));  // first_k_dense_replace 1
  add_experts(want, "model.layers.1.mlp", 8);
  want.insert("model.layers.1.mlp.gate.e_score_correction_bias");
  add(want, mlp_names("model.layers.1.mlp.shared_experts"));
  EXPECT_EQ(tensor_names(m), want);
  auto* attn = m->model->layers[0]->as<DecoderLayer>()->mla.get();
  EXPECT_EQ(attn->q_b_proj->weight.sizes(), (std::vector<int64_t>{4 * (8 + 4), 16}));
  EXPECT_EQ(attn->kv_a_proj_with_mqa->weight.sizes(), (std::vector<int64_t>{8 + 4, 32}));
  EXPECT_EQ(attn->kv_b_proj->weight.sizes(), (std::vector<int64_t>{4 * (8 + 6), 8}));
  EXPECT_EQ(attn->o_proj->weight.sizes(), (std::vector<int64_t>{32, 4 * 6}));
  // The correction bias is a buffer: saved, never trained.
  for (auto& p : m->named_parameters()) EXPECT_EQ(p.key().find("e_score_correction_bias"), std::string::npos);
}

TEST(MoeNames, DeepseekV2WithoutQLoraHasPlainQProj) {
  auto m = moe_model("deepseek_v2");
  auto names = tensor_names(m);
  EXPECT_TRUE(names.count("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_FALSE(names.count("model.layers.0.self_attn.q_a_proj.weight"));
  EXPECT_TRUE(names.count("model.layers.0.mlp.experts.3.up_proj.weight"));  // first_k_dense_replace 0
  EXPECT_TRUE(names.count("model.layers.1.mlp.shared_experts.down_proj.weight"));
  EXPECT_FALSE(names.count("model.layers.0.mlp.gate.e_score_correction_bias"));
  EXPECT_EQ(m->model->layers[0]->as<DecoderLayer>()->moe->shared_expert->up_proj->weight.size(0), 2 * 16);
}

// ---------------------------------------------------------------- routing against hand computation

namespace {
MoeConfig softmax_router(int64_t e, int64_t k, bool norm) {
  MoeConfig c;
  c.num_experts = e;
  c.num_experts_per_tok = k;
  c.norm_topk_prob = norm;
  return c;
}
std::vector<int64_t> ids(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kInt64);
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}
double sig(double x) { return 1 / (1 + std::exp(-x)); }
}  // namespace

TEST(MoeRouting, SoftmaxThenTopKKeepsProbabilitiesWithoutNormTopkProb) {
  auto logits = torch::tensor({{1.0f, 2.0f, 0.0f, 3.0f}});
  auto r = route_tokens(logits, softmax_router(4, 2, false), {});
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(0.0) + std::exp(3.0);
  EXPECT_EQ(ids(r.experts), (std::vector<int64_t>{3, 1}));
  EXPECT_NEAR(r.weights[0][0].item<float>(), std::exp(3.0) / z, 1e-6);
  EXPECT_NEAR(r.weights[0][1].item<float>(), std::exp(2.0) / z, 1e-6);
  EXPECT_NEAR(r.probs[0][2].item<float>(), 1.0 / z, 1e-6);
}

TEST(MoeRouting, NormTopkProbIsSoftmaxOverTheSelectedLogitsAsInMixtral) {
  auto logits = torch::tensor({{1.0f, 2.0f, 0.0f, 3.0f}, {0.5f, -1.0f, 0.25f, 0.0f}});
  auto r = route_tokens(logits, softmax_router(4, 2, true), {});
  EXPECT_EQ(ids(r.experts), (std::vector<int64_t>{3, 1, 0, 2}));
  EXPECT_NEAR(r.weights[0][0].item<float>(), sig(3.0 - 2.0), 1e-6);   // softmax([3, 2])[0]
  EXPECT_NEAR(r.weights[1][1].item<float>(), sig(0.25 - 0.5), 1e-6);  // softmax([0.5, 0.25])[1]
  EXPECT_TRUE(torch::allclose(r.weights.sum(1), torch::ones(2)));
}

TEST(MoeRouting, SigmoidBiasPicksGroupsAndExpertsButNotWeights) {
  // DeepSeek-V3 noaux_tc on 8 experts in 4 groups of 2, topk_group 2, k 2, scaling 2.5.
  MoeConfig c = softmax_router(8, 2, true);
  c.scoring_func = "sigmoid";
  c.topk_method = "noaux_tc";
  c.n_group = 4;
  c.topk_group = 2;
  c.routed_scaling_factor = 2.5;
  const std::vector<float> l = {2.0f, -1.0f, 0.5f, 0.4f, 1.5f, -3.0f, 0.0f, 0.1f};
  auto logits = torch::tensor(l).unsqueeze(0);
  auto bias = torch::tensor({0.f, 0.f, 0.f, 0.f, -0.5f, 0.f, 0.3f, 0.3f});
  // biased scores: [.881 .269 | .622 .599 | .318 .047 | .800 .825]; group sums (top-2 of 2):
  // 1.150, 1.221, 0.365, 1.625 -> groups 3 and 1; best biased experts there: 7 (.825), 6 (.800).
  // Expert 0 has the highest score of all but its group loses.
  auto r = route_tokens(logits, c, bias);
  auto e = ids(r.experts);
  std::sort(e.begin(), e.end());
  EXPECT_EQ(e, (std::vector<int64_t>{6, 7}));
  const double s6 = sig(0.0), s7 = sig(0.1);
  for (int j = 0; j < 2; ++j) {
    const double s = r.experts[0][j].item<int64_t>() == 6 ? s6 : s7;  // unbiased, renormalized, scaled
    EXPECT_NEAR(r.weights[0][j].item<float>(), 2.5 * s / (s6 + s7), 1e-6);
  }
  // probs for the balance loss: scores normalized over all experts.
  double total = 0;
  for (float x : l) total += sig(x);
  EXPECT_NEAR(r.probs[0][0].item<float>(), sig(2.0) / total, 1e-6);

  // Without the bias the groups are 1 and 0 (sums 1.221, 1.150), and the experts 0 and 2.
  e = ids(route_tokens(logits, c, {}).experts);
  std::sort(e.begin(), e.end());
  EXPECT_EQ(e, (std::vector<int64_t>{0, 2}));
  // All groups allowed: the two best biased experts overall, 0 (.881) and 7 (.825).
  c.topk_group = 4;
  e = ids(route_tokens(logits, c, bias).experts);
  std::sort(e.begin(), e.end());
  EXPECT_EQ(e, (std::vector<int64_t>{0, 7}));
  // Without norm_topk_prob the weights are the raw scores times the scaling factor.
  c.norm_topk_prob = false;
  r = route_tokens(logits, c, bias);
  for (int j = 0; j < 2; ++j) {
    const double s = r.experts[0][j].item<int64_t>() == 0 ? sig(2.0) : s7;
    EXPECT_NEAR(r.weights[0][j].item<float>(), 2.5 * s, 1e-6);
  }
}

TEST(MoeRouting, GroupLimitedGreedyScoresAGroupByItsBestExpert) {
  // DeepSeek-V2: softmax, groups {0, 1} and {2, 3}, one group per token. Group 0's best (e^3)
  // beats group 1's best (e^2.5) although group 1's pair has the larger sum.
  MoeConfig c = softmax_router(4, 2, false);
  c.topk_method = "group_limited_greedy";
  c.n_group = 2;
  c.topk_group = 1;
  c.routed_scaling_factor = 16.0;
  c.scale_only_unnormalized = true;
  auto r = route_tokens(torch::tensor({{3.0f, -5.0f, 2.5f, 2.5f}}), c, {});
  EXPECT_EQ(ids(r.experts), (std::vector<int64_t>{0, 1}));
  const double z = std::exp(3.0) + std::exp(-5.0) + 2 * std::exp(2.5);
  EXPECT_NEAR(r.weights[0][1].item<float>(), 16.0 * std::exp(-5.0) / z, 1e-6);
  // V2 applies routed_scaling_factor only to weights it did not renormalize.
  c.norm_topk_prob = true;
  r = route_tokens(torch::tensor({{3.0f, -5.0f, 2.5f, 2.5f}}), c, {});
  EXPECT_NEAR(r.weights[0][0].item<float>(), std::exp(3.0) / (std::exp(3.0) + std::exp(-5.0)), 1e-6);
}

// ---------------------------------------------------------------- expert computation

TEST(RoutedExperts, EqualsANaivePerTokenLoopInValueAndGradient) {
  // In float64 (see close_rel): a grouped matmul and a per-token loop sum in different orders, and
  // in fp32 which one is closer depends on the BLAS kernel the CPU selects.
  auto cfg = TransformerConfig::from_json(tiny_moe_config("qwen3_moe"), "c");
  RoutedExperts experts(cfg);
  experts->to(torch::kFloat64);
  torch::manual_seed(0);
  for (auto& p : experts->parameters()) p.data().normal_(0, 0.3);
  const int64_t n = 11, k = 3;
  auto x = torch::randn({n, 32}, torch::dtype(torch::kFloat64).requires_grad(true));
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < n; ++i) rows.push_back(torch::randperm(4).narrow(0, 0, k));
  auto idx = torch::stack(rows);  // [n, k], distinct experts per token
  auto w = torch::rand({n, k});  // fp32, as the router's weights are

  auto fast = experts(x, idx, w);
  std::vector<torch::Tensor> naive_rows;
  for (int64_t i = 0; i < n; ++i) {
    auto acc = torch::zeros({32}, torch::kFloat64);
    for (int64_t j = 0; j < k; ++j)
      acc = acc + w[i][j] * experts->expert(idx[i][j].item<int64_t>())->forward(x[i].unsqueeze(0))[0];
    naive_rows.push_back(acc);
  }
  auto naive = torch::stack(naive_rows);
  EXPECT_TRUE(close_rel(fast, naive));

  auto g = torch::randn({n, 32}, torch::kFloat64);
  auto grads = [&](const torch::Tensor& y) {
    auto ps = experts->parameters();
    ps.push_back(x);
    auto gs = torch::autograd::grad({(y * g).sum()}, ps);
    return gs;
  };
  auto gf = grads(fast), gn = grads(naive);
  for (size_t i = 0; i < gf.size(); ++i) EXPECT_TRUE(close_rel(gf[i], gn[i])) << i;

  // An expert no token chose still runs (on zero rows): its parameters get a defined, zero
  // gradient, so every rank reduces the same set of gradients.
  auto unused = torch::tensor({{0, 1}, {1, 2}, {2, 0}}, torch::kInt64);  // expert 3 idle
  experts(x.narrow(0, 0, 3), unused, torch::rand({3, 2})).sum().backward();
  for (auto& p : experts->expert(3)->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_EQ(p.grad().abs().sum().item<float>(), 0.0f);
  }
  EXPECT_GT(experts->expert(0)->gate_proj->weight.grad().abs().sum().item<float>(), 0.0f);
}

TEST(RoutedExperts, ASliceComputesOnlyItsExpertsUnderGlobalNames) {
  auto cfg = TransformerConfig::from_json(tiny_moe_config("qwen3_moe"), "c");
  RoutedExperts all(cfg), slice(cfg, 1, 2);
  all->to(torch::kFloat64);
  slice->to(torch::kFloat64);
  std::set<std::string> names;
  for (auto& p : slice->named_parameters()) names.insert(p.key());
  EXPECT_EQ(names, (std::set<std::string>{"1.gate_proj.weight", "1.up_proj.weight", "1.down_proj.weight",
                                          "2.gate_proj.weight", "2.up_proj.weight", "2.down_proj.weight"}));
  torch::NoGradGuard g;
  torch::manual_seed(1);
  for (auto& p : all->parameters()) p.normal_(0, 0.3);
  for (auto& p : slice->named_parameters()) p.value().copy_(all->named_parameters()[p.key()]);
  auto x = torch::randn({6, 32}, torch::kFloat64);
  auto idx = torch::tensor({{0, 1}, {2, 3}, {1, 2}, {3, 0}, {0, 2}, {1, 3}}, torch::kInt64);
  auto w = torch::rand({6, 2});  // fp32, as the router's weights are
  // Reference: the full module with the weights of experts outside [1, 3) zeroed.
  auto keep = ((idx >= 1).logical_and(idx < 3)).to(torch::kFloat32);
  EXPECT_TRUE(close_rel(slice(x, idx, w), all(x, idx, w * keep)));
  EXPECT_EQ(slice->first(), 1);
  EXPECT_EQ(slice->count(), 2);
}

TEST(SparseMoeBlock, Qwen2MoeAddsTheSigmoidGatedSharedExpert) {
  auto cfg = TransformerConfig::from_json(tiny_moe_config("qwen2_moe"), "c");
  SparseMoeBlock block(cfg);
  block->to(torch::kFloat64);
  torch::NoGradGuard g;
  torch::manual_seed(2);
  for (auto& p : block->parameters()) p.normal_(0, 0.3);
  auto x = torch::randn({2, 3, 32}, torch::kFloat64);
  auto flat = x.reshape({6, 32});
  // The router's own fp32 logits, so both paths pick the same experts even at near-ties.
  auto r = route_tokens(block->gate(flat), cfg.moe, {});
  auto want = block->experts(flat, r.experts, r.weights) +
              torch::sigmoid(torch::matmul(flat, block->shared_expert_gate->weight.t())) * block->shared_expert(flat);
  EXPECT_TRUE(close_rel(block(x), want.view({2, 3, 32})));
}

// ---------------------------------------------------------------- auxiliary losses

TEST(MoeLosses, LoadBalancingAndZLossMatchHandComputation) {
  // One layer, one row: 3 real tokens and one padding token, 2 experts, k 1.
  RouterStats s;
  s.token_mask = torch::tensor({{true, true, true, false}});
  // p = [.9 .1], [.6 .4], [.3 .7] -> experts 0, 0, 1: f = [2/3, 1/3], P = [.6, .4]
  s.prob_sums.push_back(torch::tensor({{1.8f, 1.2f}}));
  s.counts.push_back(torch::tensor({{2.0f, 1.0f}}));
  s.z_sums.push_back(torch::tensor({6.0f}));
  auto t = moe_loss_terms(s, 2, /*step_tokens=*/3);
  EXPECT_NEAR(t.aux.item<double>(), 2 * (2.0 / 3 * 0.6 + 1.0 / 3 * 0.4), 1e-6);
  EXPECT_NEAR(t.z.item<double>(), 2.0, 1e-6);
  EXPECT_NEAR(t.load_max_over_mean, 2.0 / 1.5, 1e-6);
  EXPECT_NEAR(t.load_min_over_mean, 1.0 / 1.5, 1e-6);
  EXPECT_EQ(t.tokens, 3);
  // Perfectly uniform routing gives aux = k.
  EXPECT_NEAR(load_balancing_loss(torch::tensor({{4.0f, 4.0f, 4.0f, 4.0f}}), torch::tensor({{2.0f, 2.0f, 2.0f, 2.0f}}),
                                  torch::tensor({8.0f}), 4)[0].item<float>(),
              2.0, 1e-6);
  // Two rows of 3 and 1 tokens in a step of 8: each row's aux weighted by its tokens / 8.
  s.token_mask = torch::tensor({{true, true, true}, {true, false, false}});
  s.prob_sums = {torch::tensor({{1.8f, 1.2f}, {0.2f, 0.8f}})};
  s.counts = {torch::tensor({{2.0f, 1.0f}, {0.0f, 1.0f}})};
  s.z_sums = {torch::tensor({6.0f, 1.0f})};
  t = moe_loss_terms(s, 2, 8);
  EXPECT_NEAR(t.aux.item<double>(), (3 * 2 * (2.0 / 3 * 0.6 + 1.0 / 3 * 0.4) + 1 * 2 * (1.0 * 0.8)) / 8, 1e-6);
  EXPECT_NEAR(t.z.item<double>(), 7.0 / 8, 1e-6);
}

namespace {
// Hugging Face's load_balancing_loss_func, statement for statement, on concatenated layer logits.
double hf_load_balancing_loss(const std::vector<torch::Tensor>& gate_logits, int64_t num_experts, int64_t top_k) {
  auto logits = torch::cat(gate_logits, 0);
  auto routing_weights = torch::softmax(logits, -1);
  auto selected = std::get<1>(torch::topk(routing_weights, top_k, -1));
  auto expert_mask = torch::one_hot(selected, num_experts);
  auto tokens_per_expert = expert_mask.to(torch::kFloat32).mean(0);
  auto router_prob_per_expert = routing_weights.mean(0);
  return (tokens_per_expert * router_prob_per_expert.unsqueeze(0)).sum().item<double>() * num_experts;
}
}  // namespace

TEST(MoeLosses, BlockStatisticsGiveHuggingFacesLossOverLayersAndSkipPadding) {
  auto cfg = TransformerConfig::from_json(tiny_moe_config("mixtral"), "c");
  SparseMoeBlock block(cfg);
  torch::NoGradGuard g;
  torch::manual_seed(3);
  for (auto& p : block->parameters()) p.normal_(0, 0.5);
  auto x1 = torch::randn({1, 7, 32}), x2 = torch::randn({1, 7, 32});
  RouterStats s;
  s.token_mask = torch::ones({1, 7}, torch::kBool);
  block(x1, &s), block(x2, &s);  // as two MoE layers of one forward
  auto l1 = torch::matmul(x1[0], block->gate->weight.t()), l2 = torch::matmul(x2[0], block->gate->weight.t());
  auto t = moe_loss_terms(s, 4, 7);
  EXPECT_NEAR(t.aux.item<double>(), hf_load_balancing_loss({l1, l2}, 4, 2), 1e-5);
  auto lse = torch::logsumexp(torch::cat({l1, l2}), -1);
  EXPECT_NEAR(t.z.item<double>(), lse.pow(2).mean().item<double>(), 1e-4);
  // Padding tokens (mask false) are left out of every statistic.
  RouterStats p;
  p.token_mask = torch::tensor({{true, true, true, true, true, false, false}});
  block(x1, &p);
  auto tp = moe_loss_terms(p, 4, 5);
  EXPECT_NEAR(tp.aux.item<double>(), hf_load_balancing_loss({l1.narrow(0, 0, 5)}, 4, 2), 1e-5);
  EXPECT_NEAR(tp.z.item<double>(), lse.narrow(0, 0, 5).pow(2).mean().item<double>(), 1e-4);
}

// ---------------------------------------------------------------- whole models

class MoeFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(MoeFamily, PackedRowEqualsDocumentsRunSeparately) {
  auto m = moe_model(GetParam());
  distillery::testing::expect_packed_row_equals_documents_run_separately(m);
}

TEST_P(MoeFamily, SaveLoadRoundTripKeepsEveryTensorUnderItsHuggingFaceName) {
  TempDir dir;
  auto a = moe_model(GetParam(), 5);
  {
    torch::NoGradGuard g;
    for (auto& b : a->named_buffers()) b.value().copy_(torch::linspace(-0.1, 0.1, b.value().numel()));
  }
  save_hf_model(a, dir / "m", "", torch::kFloat32, /*max_shard_bytes=*/16 << 10);  // several shards
  EXPECT_TRUE(std::filesystem::exists(dir / "m/model.safetensors.index.json"));
  auto set = SafetensorsSet::open_dir(dir / "m");
  auto names = tensor_names(a);
  const auto on_disk = set.names();
  EXPECT_EQ(std::set<std::string>(on_disk.begin(), on_disk.end()), names);
  auto b = load_hf_model(dir / "m");
  auto ta = hf_named_tensors(a), tb = hf_named_tensors(b);
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i) {
    EXPECT_EQ(ta[i].first, tb[i].first);
    EXPECT_TRUE(torch::equal(ta[i].second, tb[i].second)) << ta[i].first;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, MoeFamily,
                         ::testing::Values("mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3"));

TEST(MoeModel, DeepseekV3CheckpointsMayCarryMultiTokenPredictionLayers) {
  TempDir dir;
  auto a = moe_model("deepseek_v3");
  auto sd = hf_state_dict(a, torch::kFloat32);
  sd.emplace_back("model.layers.2.eh_proj.weight", torch::zeros({32, 64}));  // layer num_hidden_layers: MTP
  std::filesystem::create_directories(dir / "m");
  save_safetensors(dir / "m/model.safetensors", sd);
  write_json_file(dir / "m/config.json", tiny_moe_config("deepseek_v3"));
  EXPECT_NO_THROW(load_hf_model(dir / "m"));
  sd.emplace_back("model.layers.3.eh_proj.weight", torch::zeros({32, 64}));  // beyond num_nextn_predict_layers
  save_safetensors(dir / "m/model.safetensors", sd);
  EXPECT_THROW(load_hf_model(dir / "m"), UserError);
}

TEST(MoeModel, InitModelWritesALoadableDirectoryForEveryFamily) {
  TempDir dir;
  for (const std::string family : {"mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3"}) {
    write_json_file(dir / (family + ".json"), tiny_moe_config(family));
    ASSERT_EQ(cmd_init_model({"--config", dir / (family + ".json"), "--out", dir / family, "--seed", "3"}), 0);
    auto m = load_hf_model(dir / family);
    EXPECT_EQ(m->config().model_type, family);
    EXPECT_EQ(read_json_file(dir / (family + "/config.json"))["model_type"], family);
  }
}

// ---------------------------------------------------------------- config errors

namespace {
std::string config_error(nlohmann::json j) {
  try {
    TransformerConfig::from_json(j, "m/config.json");
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(MoeConfig, UnsupportedRoutingValuesAreUserErrorsNamingTheField) {
  auto j = tiny_moe_config("deepseek_v3");
  j["scoring_func"] = "sqrtsoftplus";
  EXPECT_EQ(config_error(j),
            "m/config.json: scoring_func 'sqrtsoftplus' is not supported for deepseek_v3 (supported: sigmoid)");
  j = tiny_moe_config("deepseek_v3");
  j["topk_method"] = "group_limited_greedy";
  EXPECT_EQ(config_error(j),
            "m/config.json: topk_method 'group_limited_greedy' is not supported for deepseek_v3 (supported: noaux_tc)");
  j = tiny_moe_config("deepseek_v2");
  j["topk_method"] = "noaux_tc";
  EXPECT_NE(config_error(j).find("topk_method 'noaux_tc' is not supported for deepseek_v2"), std::string::npos);
  j = tiny_moe_config("deepseek_v3");
  j["n_group"] = 3;
  EXPECT_EQ(config_error(j), "m/config.json: n_group=3 does not divide the 8 routed experts");
  j = tiny_moe_config("qwen3_moe");
  j["num_experts_per_tok"] = 5;
  EXPECT_EQ(config_error(j), "m/config.json: num_experts_per_tok=5 must be in [1, 4]");
  j = tiny_moe_config("deepseek_v2");  // DeepseekV2Config defaults num_experts_per_tok to None
  j.erase("num_experts_per_tok");
  EXPECT_EQ(config_error(j), "m/config.json: missing required field 'num_experts_per_tok'");
  j = tiny_moe_config("deepseek_v3");
  j["quantization_config"] = {{"quant_method", "fp8"}};
  EXPECT_NE(config_error(j).find("quantization_config is not supported"), std::string::npos);
  j = tiny_moe_config("deepseek_v3");
  j["rope_scaling"]["type"] = "dynamic";
  EXPECT_EQ(config_error(j),
            "m/config.json: rope_scaling: rope_type 'dynamic' is not supported (supported: default, linear, llama3, yarn)");
}

}  // namespace moe_test
