#include <gtest/gtest.h>

#include "tests/unit/packing_check.h"

#include <cmath>
#include <set>

#include "tests/unit/test_util.h"
#include "common/error.h"
#include "models/transformer.h"

using namespace distillery;
using distillery::testing::tiny_config;

namespace {
CausalLM tiny_model(const std::string& family, uint64_t seed = 1) {
  CausalLM m(TransformerConfig::from_json(tiny_config(family), "config.json"));
  m->init_weights(seed);
  return m;
}
}  // namespace

TEST(TransformerNames, AreHuggingFaceTensorNames) {
  auto m = tiny_model("qwen2");
  std::set<std::string> names;
  for (auto& p : m->named_parameters()) names.insert(p.key());
  for (const char* n : {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                        "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.o_proj.weight",
                        "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight",
                        "model.layers.0.mlp.down_proj.weight", "model.layers.0.input_layernorm.weight",
                        "model.layers.0.post_attention_layernorm.weight", "model.norm.weight", "lm_head.weight"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_FALSE(names.count("model.layers.0.self_attn.o_proj.bias"));  // qwen2: no o_proj bias
  EXPECT_EQ(names.size(), 1u + 2 * (3 + 1 + 3 + 2 + 3) + 1 + 1);
}

TEST(TransformerNames, Qwen3HasQkNormAndTiedModelsHaveNoLmHead) {
  auto j = tiny_config("qwen3");
  j["tie_word_embeddings"] = true;
  CausalLM m(TransformerConfig::from_json(j, "config.json"));
  std::set<std::string> names;
  for (auto& p : m->named_parameters()) names.insert(p.key());
  EXPECT_TRUE(names.count("model.layers.0.self_attn.q_norm.weight"));
  EXPECT_TRUE(names.count("model.layers.0.self_attn.k_norm.weight"));
  EXPECT_FALSE(names.count("lm_head.weight"));
  EXPECT_EQ(m->model->layers[0]->as<DecoderLayer>()->self_attn->q_proj->weight.size(0), 4 * 16);  // explicit head_dim
}

TEST(ModelConfig, RejectsUnsupportedValuesByName) {
  auto j = tiny_config("llama");
  j["model_type"] = "gpt2";
  EXPECT_THROW(
      {
        try {
          TransformerConfig::from_json(j, "m/config.json");
        } catch (const UserError& e) {
          EXPECT_STREQ(e.what(),
                       "m/config.json: model_type 'gpt2' is not supported (supported: llama, qwen2, qwen3, mistral, mixtral, "
                       "qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3)");
          throw;
        }
      },
      UserError);
  j = tiny_config("llama");
  j["rope_scaling"]["rope_type"] = "dynamic";
  EXPECT_THROW(TransformerConfig::from_json(j, "c"), UserError);
  j = tiny_config("llama");
  j["hidden_act"] = "gelu";
  EXPECT_THROW(TransformerConfig::from_json(j, "c"), UserError);
  j = tiny_config("llama");
  j["num_hidden_layers"] = "two";
  try {
    TransformerConfig::from_json(j, "c");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "c: field 'num_hidden_layers' has the wrong type (\"two\")");
  }
}

TEST(Rope, DefaultTablesMatchHandComputedRotation) {
  auto j = tiny_config("qwen2");
  j["hidden_size"] = 16;  // 4 heads of head_dim 4
  RotaryEmbedding rope(TransformerConfig::from_json(j, "c"));
  // inv_freq = theta^(-[0, 2]/4) = [1, 0.01]
  EXPECT_NEAR(rope.inv_freq()[0].item<float>(), 1.0f, 1e-7);
  EXPECT_NEAR(rope.inv_freq()[1].item<float>(), 0.01f, 1e-9);
  auto [cos, sin] = rope.tables(torch::tensor({{3}}, torch::kInt64));
  auto x = torch::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 1, 1, 4});
  auto y = apply_rotary(x, cos, sin).view({4});
  const double p = 3;
  // rotate_half pairs element i with i + D/2: (x0, x2) by angle p, (x1, x3) by angle 0.01 p.
  EXPECT_NEAR(y[0].item<float>(), 1 * std::cos(p) - 3 * std::sin(p), 1e-5);
  EXPECT_NEAR(y[2].item<float>(), 3 * std::cos(p) + 1 * std::sin(p), 1e-5);
  EXPECT_NEAR(y[1].item<float>(), 2 * std::cos(0.01 * p) - 4 * std::sin(0.01 * p), 1e-5);
  EXPECT_NEAR(y[3].item<float>(), 4 * std::cos(0.01 * p) + 2 * std::sin(0.01 * p), 1e-5);
}

TEST(Rope, Llama3ScalingMatchesReferenceFrequencies) {
  // Golden values from the Hugging Face llama3 formula (PyTorch 1.13, float32):
  // head_dim 8, theta 1e4, factor 8, low 1, high 4, original 64: one frequency kept (wavelength
  // 6.3 < 16), one blended (62.8), two divided by the factor (628, 6283).
  RotaryEmbedding rope(TransformerConfig::from_json(tiny_config("llama"), "c"));
  const std::vector<float> expected = {1.0f, 0.0130422562f, 0.00124999997f, 0.000125000006f};
  ASSERT_EQ(rope.inv_freq().numel(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(rope.inv_freq()[i].item<float>(), expected[i], expected[i] * 1e-5) << i;
}

TEST(AttentionMask, BlocksOtherDocumentsFutureAndOutsideWindow) {
  auto doc = torch::tensor({{0, 0, 0, 1, 1, 1, 1}}, torch::kInt64);
  auto m = attention_mask(doc, 7, std::nullopt, torch::kCPU)[0][0];
  EXPECT_TRUE(m[2][0].item<bool>());
  EXPECT_FALSE(m[0][2].item<bool>());   // future
  EXPECT_FALSE(m[3][2].item<bool>());   // other document
  EXPECT_TRUE(m[6][3].item<bool>());
  auto w = attention_mask(doc, 7, 2, torch::kCPU)[0][0];
  EXPECT_TRUE(w[6][5].item<bool>());
  EXPECT_FALSE(w[6][4].item<bool>());   // q - k = 2 is outside a window of 2
}

TEST(Attention, SingleHeadMatchesHandComputedSoftmax) {
  // One head of size 2, identity projections, no rope (position 0 for all => cos 1, sin 0).
  auto j = tiny_config("llama");
  j.erase("rope_scaling");
  j["hidden_size"] = 2;
  j["num_attention_heads"] = 1;
  j["num_key_value_heads"] = 1;
  Attention attn(TransformerConfig::from_json(j, "c"));
  torch::NoGradGuard g;
  for (auto* l : {&attn->q_proj, &attn->k_proj, &attn->v_proj, &attn->o_proj}) (*l)->weight.copy_(torch::eye(2));
  auto x = torch::tensor({{{1.f, 0.f}, {0.f, 2.f}}});  // [1, 2, 2]
  AttentionInputs in;
  in.cos = torch::ones({1, 1, 2, 2});
  in.sin = torch::zeros({1, 1, 2, 2});
  in.allowed = attention_mask(torch::Tensor(), 2, std::nullopt, torch::kCPU);
  auto y = attn->forward(x, in);
  // token 1 attends to k0=(1,0), k1=(0,2) with q=(0,2): scores [0, 4]/sqrt(2)
  const double a = std::exp(0.0), b = std::exp(4.0 / std::sqrt(2.0));
  EXPECT_NEAR(y[0][0][0].item<float>(), 1.0, 1e-6);
  EXPECT_NEAR(y[0][1][0].item<float>(), a / (a + b), 1e-5);
  EXPECT_NEAR(y[0][1][1].item<float>(), 2 * b / (a + b), 1e-5);
}

class EveryFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryFamily, PackedRowEqualsDocumentsRunSeparately) {
  auto m = tiny_model(GetParam());
  distillery::testing::expect_packed_row_equals_documents_run_separately(m);
}

TEST_P(EveryFamily, InitIsSeededAndFollowsInitializerRange) {
  auto a = tiny_model(GetParam(), 7), b = tiny_model(GetParam(), 7), c = tiny_model(GetParam(), 8);
  auto wa = a->model->embed_tokens->weight, wb = b->model->embed_tokens->weight, wc = c->model->embed_tokens->weight;
  EXPECT_TRUE(torch::equal(wa, wb));
  EXPECT_FALSE(torch::equal(wa, wc));
  EXPECT_NEAR(wa.std().item<float>(), 0.02, 0.002);
  EXPECT_TRUE(torch::equal(a->model->norm->weight, torch::ones(32)));
}

INSTANTIATE_TEST_SUITE_P(Families, EveryFamily, ::testing::Values("llama", "qwen2", "qwen3", "mistral"));
