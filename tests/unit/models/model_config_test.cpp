// config.json semantics: missing keys take transformers' per-family defaults, sliding windows are
// per layer as transformers assigns them (training mask and KV-cache path), and keys that change
// the math without an implementation are refused by name and value.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/unit/close_check.h"
#include "tests/unit/test_util.h"
#include "common/error.h"
#include "models/model_defaults.h"
#include "models/transformer.h"

using namespace distillery;
using distillery::testing::close_rel;
using distillery::testing::tiny_config;

namespace model_config_test {
namespace {

using Windows = std::vector<std::optional<int64_t>>;

TransformerConfig parse(const nlohmann::json& j) { return TransformerConfig::from_json(j, "m/config.json"); }

std::string config_error(const nlohmann::json& j) {
  try {
    parse(j);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

// A tiny qwen2 with use_sliding_window and `extra` keys.
nlohmann::json qwen2_sliding(int64_t layers, nlohmann::json extra) {
  auto j = tiny_config("qwen2");
  j["num_hidden_layers"] = layers;
  j["use_sliding_window"] = true;
  j["sliding_window"] = 4;
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return j;
}

CausalLM seeded(const nlohmann::json& j) {
  CausalLM m(parse(j));
  m->init_weights(3);
  m->to(torch::kFloat64);  // see close_rel
  return m;
}

torch::Tensor tokens(int64_t n) { return (torch::arange(n, torch::kInt64) * 7 + 3).remainder(97).unsqueeze(0); }

}  // namespace

// ---------------------------------------------------------------- per-family defaults

TEST(ModelDefaults, AMinimalConfigTakesTransformersDefaultsOfItsFamily) {
  auto llama = parse({{"model_type", "llama"}});
  EXPECT_EQ(llama.vocab_size, 32000);
  EXPECT_EQ(llama.intermediate_size, 11008);
  EXPECT_EQ(llama.num_key_value_heads, 32);  // None: num_attention_heads
  EXPECT_EQ(llama.head_dim, 128);
  EXPECT_EQ(llama.max_position_embeddings, 2048);
  EXPECT_EQ(llama.rope_theta, 10000.0);
  EXPECT_EQ(llama.rms_norm_eps, 1e-6);
  EXPECT_FALSE(llama.has_sliding_window());

  auto mistral = parse({{"model_type", "mistral"}});
  EXPECT_EQ(mistral.num_key_value_heads, 8);
  EXPECT_EQ(mistral.intermediate_size, 14336);
  EXPECT_EQ(mistral.max_position_embeddings, 131072);
  EXPECT_EQ(mistral.layer_window, Windows(32, 4096));  // sliding_window defaults to 4096, every layer

  auto qwen2 = parse({{"model_type", "qwen2"}});
  EXPECT_EQ(qwen2.vocab_size, 151936);
  EXPECT_EQ(qwen2.num_key_value_heads, 32);
  EXPECT_EQ(qwen2.max_position_embeddings, 32768);
  EXPECT_TRUE(qwen2.qkv_bias);
  EXPECT_FALSE(qwen2.has_sliding_window());

  auto qwen3 = parse({{"model_type", "qwen3"}});
  EXPECT_EQ(qwen3.head_dim, 128);
  EXPECT_EQ(qwen3.intermediate_size, 22016);
  EXPECT_FALSE(qwen3.qkv_bias);

  auto mixtral = parse({{"model_type", "mixtral"}});
  EXPECT_EQ(mixtral.rope_theta, 1e6);
  EXPECT_EQ(mixtral.rms_norm_eps, 1e-5);
  EXPECT_EQ(mixtral.num_key_value_heads, 8);
  EXPECT_EQ(mixtral.moe.num_experts, 8);
  EXPECT_EQ(mixtral.moe.num_experts_per_tok, 2);
  EXPECT_EQ(mixtral.moe.router_aux_loss_coef.value(), 0.001);
  EXPECT_FALSE(mixtral.has_sliding_window());  // Mixtral's sliding_window defaults to None

  auto qwen2_moe = parse({{"model_type", "qwen2_moe"}});
  EXPECT_EQ(qwen2_moe.num_attention_heads, 16);
  EXPECT_EQ(qwen2_moe.num_key_value_heads, 16);
  EXPECT_EQ(qwen2_moe.num_hidden_layers, 24);
  EXPECT_EQ(qwen2_moe.moe.num_experts, 60);
  EXPECT_EQ(qwen2_moe.moe.num_experts_per_tok, 4);
  EXPECT_EQ(qwen2_moe.moe.moe_intermediate_size, 1408);
  EXPECT_EQ(qwen2_moe.moe.shared_intermediate_size, 5632);
  EXPECT_TRUE(qwen2_moe.qkv_bias);
  EXPECT_EQ(qwen2_moe.moe.num_sparse_layers(), 24);

  auto qwen3_moe = parse({{"model_type", "qwen3_moe"}});
  EXPECT_EQ(qwen3_moe.num_attention_heads, 32);
  EXPECT_EQ(qwen3_moe.num_key_value_heads, 4);
  EXPECT_EQ(qwen3_moe.head_dim, 64);  // not a Qwen3MoeConfig argument: hidden_size / heads
  EXPECT_EQ(qwen3_moe.moe.num_experts, 128);
  EXPECT_EQ(qwen3_moe.moe.num_experts_per_tok, 8);
  EXPECT_EQ(qwen3_moe.moe.moe_intermediate_size, 768);

  auto v2 = parse({{"model_type", "deepseek_v2"}, {"num_experts_per_tok", 6}});  // its default is None
  EXPECT_EQ(v2.num_key_value_heads, 32);
  EXPECT_EQ(v2.max_position_embeddings, 2048);
  EXPECT_EQ(v2.moe.num_experts, 64);
  EXPECT_EQ(v2.moe.shared_intermediate_size, 2 * 1407);
  EXPECT_EQ(v2.moe.topk_method, "greedy");
  EXPECT_EQ(v2.moe.routed_scaling_factor, 1.0);
  EXPECT_FALSE(v2.moe.norm_topk_prob);
  EXPECT_EQ(v2.mla.q_lora_rank, 1536);
  EXPECT_EQ(v2.mla.kv_lora_rank, 512);
  EXPECT_EQ(v2.moe.num_sparse_layers(), 32);  // first_k_dense_replace 0

  auto v3 = parse({{"model_type", "deepseek_v3"}});
  EXPECT_EQ(v3.num_hidden_layers, 61);
  EXPECT_EQ(v3.num_key_value_heads, 128);
  EXPECT_EQ(v3.max_position_embeddings, 4096);
  EXPECT_EQ(v3.moe.num_experts, 256);
  EXPECT_EQ(v3.moe.num_experts_per_tok, 8);
  EXPECT_EQ(v3.moe.n_group, 8);
  EXPECT_EQ(v3.moe.topk_group, 4);
  EXPECT_EQ(v3.moe.shared_intermediate_size, 1 * 2048);
  EXPECT_EQ(v3.moe.routed_scaling_factor, 2.5);
  EXPECT_TRUE(v3.moe.norm_topk_prob);
  EXPECT_EQ(v3.moe.scoring_func, "sigmoid");
  EXPECT_EQ(v3.mla.q_lora_rank, 1536);
  EXPECT_EQ(v3.mla.qk_rope_head_dim, 64);
  EXPECT_EQ(v3.moe.num_sparse_layers(), 61 - 3);  // first_k_dense_replace 3
}

TEST(ModelDefaults, EveryFamilyHasATableAndAnExplicitNullIsTransformersNone) {
  for (const auto& mt : supported_model_types()) EXPECT_NE(family_defaults(mt), nullptr) << mt;
  EXPECT_EQ(family_defaults("gpt2"), nullptr);
  // Missing: the default (4096); null: no window.
  EXPECT_FALSE(parse({{"model_type", "mistral"}, {"sliding_window", nullptr}}).has_sliding_window());
  // q_lora_rank null: a plain q_proj (DeepSeek-V2-Lite), not the default 1536.
  EXPECT_EQ(parse({{"model_type", "deepseek_v3"}, {"q_lora_rank", nullptr}}).mla.q_lora_rank, 0);
  // num_key_value_heads null: num_attention_heads, even where the default is 8.
  EXPECT_EQ(parse({{"model_type", "mixtral"}, {"num_key_value_heads", nullptr}}).num_key_value_heads, 32);
}

// ---------------------------------------------------------------- sliding windows

TEST(SlidingWindow, Qwen2SlidesOnlyLayersFromMaxWindowLayersOn) {
  EXPECT_EQ(parse(qwen2_sliding(4, {{"max_window_layers", 2}})).layer_window, (Windows{{}, {}, 4, 4}));
  EXPECT_EQ(parse(qwen2_sliding(4, {{"max_window_layers", 0}})).layer_window, Windows(4, 4));
  EXPECT_EQ(parse(qwen2_sliding(4, {{"max_window_layers", 4}})).layer_window, Windows(4));
  EXPECT_EQ(parse(qwen2_sliding(4, {})).layer_window, Windows(4));  // max_window_layers defaults to 28
  EXPECT_EQ(parse(qwen2_sliding(4, {{"use_sliding_window", false}, {"max_window_layers", 0}})).layer_window,
            Windows(4));
  EXPECT_EQ(parse(qwen2_sliding(4, {{"sliding_window", nullptr}, {"max_window_layers", 0}})).layer_window, Windows(4));
  auto j = qwen2_sliding(3, {{"max_window_layers", 1}});
  j.erase("sliding_window");  // defaults to 4096
  EXPECT_EQ(parse(j).layer_window, (Windows{{}, 4096, 4096}));
  j = qwen2_sliding(3, {{"max_window_layers", 1}});
  j["model_type"] = "qwen3";
  j["head_dim"] = 8;
  EXPECT_EQ(parse(j).layer_window, (Windows{{}, 4, 4}));
}

TEST(SlidingWindow, LayerTypesWinOverMaxWindowLayersAndAreValidated) {
  auto j = qwen2_sliding(3, {{"max_window_layers", 0},
                             {"layer_types", {"sliding_attention", "full_attention", "sliding_attention"}}});
  EXPECT_EQ(parse(j).layer_window, (Windows{4, {}, 4}));
  j["layer_types"] = {"full_attention", "sliding_attention"};
  EXPECT_EQ(config_error(j), "m/config.json: layer_types has 2 entries but num_hidden_layers=3");
  j["layer_types"] = {"full_attention", "chunked_attention", "full_attention"};
  EXPECT_EQ(config_error(j), "m/config.json: layer_types[1]='chunked_attention' is not supported (supported: "
                             "full_attention, sliding_attention)");
  j = qwen2_sliding(2, {{"use_sliding_window", false}, {"layer_types", {"full_attention", "sliding_attention"}}});
  EXPECT_EQ(config_error(j), "m/config.json: layer_types[1]='sliding_attention' needs a sliding_window, but "
                             "use_sliding_window is false");
  j = tiny_config("mistral");
  j["layer_types"] = {"sliding_attention", "full_attention"};
  EXPECT_EQ(config_error(j), "m/config.json: layer_types with 'sliding_attention' is not supported for model_type "
                             "mistral (mistral in transformers does not read layer_types)");
  j["layer_types"] = {"full_attention", "full_attention"};
  EXPECT_EQ(parse(j).layer_window, Windows(2, 5));  // mistral: sliding_window on every layer
  j = tiny_config("qwen2");
  j["model_type"] = "qwen2_moe";
  j["num_experts"] = 4;
  j["num_experts_per_tok"] = 2;
  j["use_sliding_window"] = true;
  EXPECT_EQ(config_error(j), "m/config.json: use_sliding_window=true is not supported for model_type qwen2_moe "
                             "(transformers versions disagree on which layers slide)");
  j = qwen2_sliding(2, {{"max_window_layers", 0}, {"sliding_window", 0}});
  EXPECT_EQ(config_error(j), "m/config.json: sliding_window=0 must be positive");
}

TEST(SlidingWindow, Qwen2WithMaxWindowLayersAtTheLayerCountSlidesNowhere) {
  // The input: 2 layers, use_sliding_window, window 4, max_window_layers 2, 40 tokens.
  torch::NoGradGuard g;
  auto sliding = seeded(qwen2_sliding(2, {{"max_window_layers", 2}}));
  auto full = seeded(tiny_config("qwen2"));
  auto ids = tokens(40);
  EXPECT_TRUE(torch::equal(sliding->forward({ids, {}, {}}), full->forward({ids, {}, {}})));
  // The window would have mattered: with every layer sliding the states differ.
  auto all = seeded(qwen2_sliding(2, {{"max_window_layers", 0}}));
  EXPECT_FALSE(close_rel(all->forward({ids, {}, {}}), full->forward({ids, {}, {}}), 1e-3));
}

TEST(SlidingWindow, OnlyTheSlidingLayerSeesTheWindowInTrainingAndCachedGeneration) {
  // Layer 0 full, layer 1 window 4 (max_window_layers 1; the same through layer_types).
  torch::NoGradGuard g;
  auto m = seeded(qwen2_sliding(2, {{"max_window_layers", 1}}));
  auto by_types = seeded(qwen2_sliding(2, {{"layer_types", {"full_attention", "sliding_attention"}}}));
  const int64_t T = 40;
  auto ids = tokens(T);
  // Two packed documents (25 and 15 tokens): the window and the document boundary both apply.
  auto pos_docs = torch::cat({torch::arange(25), torch::arange(15)}).unsqueeze(0);
  auto doc = torch::cat({torch::zeros({1, 25}, torch::kInt64), torch::ones({1, 15}, torch::kInt64)}, 1);
  auto h = m->forward({ids, pos_docs, doc});

  // Reference: the decoder composed by hand, each layer with the mask it should have.
  AttentionInputs in;
  std::tie(in.cos, in.sin) = RotaryEmbedding(m->config()).tables(pos_docs);
  auto want = m->model->embed_tokens(ids);
  in.allowed = attention_mask(doc, T, std::nullopt, torch::kCPU);
  want = m->model->layers[0]->as<DecoderLayer>()->forward(want, in);
  in.allowed = attention_mask(doc, T, 4, torch::kCPU);
  want = m->model->layers[1]->as<DecoderLayer>()->forward(want, in);
  want = m->model->norm(want);
  EXPECT_TRUE(close_rel(h, want));
  EXPECT_TRUE(torch::equal(by_types->forward({ids, pos_docs, doc}), m->forward({ids, pos_docs, doc})));
  // Neither all-full nor all-sliding attention gives these states.
  EXPECT_FALSE(close_rel(seeded(tiny_config("qwen2"))->forward({ids, pos_docs, doc}), want, 1e-3));
  EXPECT_FALSE(close_rel(seeded(qwen2_sliding(2, {{"max_window_layers", 0}}))->forward({ids, pos_docs, doc}), want,
                         1e-3));

  // Generation: a prefill of 12 tokens, then one token at a time through the KV cache, gives the
  // full forward's states at every position (the window counted over the cached keys).
  KvCache cache;
  std::vector<torch::Tensor> steps = {m->forward({ids.narrow(1, 0, 12), pos_docs.narrow(1, 0, 12),
                                                  doc.narrow(1, 0, 12), nullptr, &cache})};
  for (int64_t t = 12; t < T; ++t)
    steps.push_back(m->forward({ids.narrow(1, t, 1), pos_docs.narrow(1, t, 1), doc.narrow(1, t, 1), nullptr, &cache}));
  EXPECT_TRUE(close_rel(torch::cat(steps, 1), want));
}

// ---------------------------------------------------------------- refused keys

TEST(ModelConfig, KeysThatChangeTheMathWithoutAnImplementationAreRefusedByNameAndValue) {
  auto with = [](const std::string& family, const char* key, nlohmann::json value) {
    auto j = tiny_config(family);
    j[key] = std::move(value);
    return config_error(j);
  };
  EXPECT_EQ(with("llama", "partial_rotary_factor", 0.5),
            "m/config.json: partial_rotary_factor=0.5 is not supported (rotary embeddings cover the whole head: 1.0)");
  EXPECT_EQ(with("qwen3", "attn_logit_softcapping", 50.0),
            "m/config.json: attn_logit_softcapping=50.0 is not supported (logit soft-capping; use null)");
  EXPECT_EQ(with("mistral", "final_logit_softcapping", 30.0),
            "m/config.json: final_logit_softcapping=30.0 is not supported (logit soft-capping; use null)");
  EXPECT_EQ(with("llama", "hidden_act", "gelu_pytorch_tanh"),
            "m/config.json: hidden_act 'gelu_pytorch_tanh' is not supported (supported: silu, swish)");
  EXPECT_EQ(with("qwen2", "attention_dropout", 0.1),
            "m/config.json: attention_dropout=0.1 is not supported (transformers applies it while training; use 0.0)");
  EXPECT_EQ(with("qwen2", "use_mrope", true),
            "m/config.json: use_mrope=true is not supported (multimodal rotary embeddings)");
  EXPECT_EQ(with("mistral", "attention_bias", true),
            "m/config.json: attention_bias=true is not supported for model_type mistral (its attention projections "
            "have no biases)");
  EXPECT_EQ(with("qwen2", "attention_bias", true),
            "m/config.json: attention_bias=true is not supported for model_type qwen2 (its q/k/v projections always "
            "have biases, o_proj never)");
  EXPECT_EQ(with("qwen3", "mlp_bias", true),
            "m/config.json: mlp_bias=true is not supported for model_type qwen3 (its MLPs have no biases)");
  auto j = tiny_config("llama");
  j["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 2.0}};
  EXPECT_EQ(config_error(j), "m/config.json: rope_scaling: rope_type 'longrope' is not supported (supported: default, "
                             "linear, llama3, yarn)");
  // Honoured or without effect on the math: accepted.
  for (auto [key, value] : std::vector<std::pair<const char*, nlohmann::json>>{{"partial_rotary_factor", 1.0},
                                                                              {"attn_logit_softcapping", nullptr},
                                                                              {"use_mrope", false},
                                                                              {"hidden_act", "swish"},
                                                                              {"pretraining_tp", 2},
                                                                              {"attention_bias", true},
                                                                              {"mlp_bias", true}})
    EXPECT_EQ(with("llama", key, value), "(no error)") << key;
}

}  // namespace model_config_test
