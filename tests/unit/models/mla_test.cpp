#include <gtest/gtest.h>

#include <cmath>

#include "tests/unit/close_check.h"
#include "tests/unit/moe_test_util.h"
#include "models/transformer.h"

using namespace distillery;
using distillery::testing::close_rel;
using distillery::testing::tiny_config;
using distillery::testing::tiny_moe_config;

namespace mla_test {

namespace {

// DeepSeek's yarn_get_mscale.
double mscale(double factor, double m) { return 0.1 * m * std::log(factor) + 1.0; }

torch::Tensor rms(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return w * x / torch::sqrt(x.pow(2).mean(-1, true) + eps);
}

// Multi-head latent attention for one sequence written out from the DeepSeek-V2 paper with plain
// tensor ops: rope rotates pairs (2i, 2i+1) as complex numbers when `interleaved` (DeepSeek's
// layout), pairs (i, i + D/2) otherwise; cos/sin carry yarn's attention factor `af`.
torch::Tensor naive_mla(MlaAttentionImpl& a, const TransformerConfig& c, const torch::Tensor& x /*[T, hidden]*/,
                        const std::vector<int64_t>& pos, const std::vector<int64_t>& doc, const torch::Tensor& inv_freq,
                        double af, double scale) {
  const int64_t T = x.size(0), H = c.num_attention_heads;
  const int64_t nope = c.mla.qk_nope_head_dim, rope = c.mla.qk_rope_head_dim, dv = c.mla.v_head_dim;
  const double eps = 1e-6;  // DeepSeek's latent norms use RMSNorm's default eps
  torch::Tensor q = a.q_proj ? torch::matmul(x, a.q_proj->weight.t())
                             : torch::matmul(rms(torch::matmul(x, a.q_a_proj->weight.t()), a.q_a_layernorm->weight, eps),
                                             a.q_b_proj->weight.t());                   // [T, H*(nope+rope)]
  auto ckv = torch::matmul(x, a.kv_a_proj_with_mqa->weight.t());                        // [T, kv_lora+rope]
  auto kv = torch::matmul(rms(ckv.narrow(1, 0, c.mla.kv_lora_rank), a.kv_a_layernorm->weight, eps),
                          a.kv_b_proj->weight.t());                                     // [T, H*(nope+v)]
  auto k_pe = ckv.narrow(1, c.mla.kv_lora_rank, rope);                                  // [T, rope]
  auto rotate = [&](torch::Tensor v, int64_t p) {
    auto out = torch::zeros_like(v);
    for (int64_t i = 0; i < rope / 2; ++i) {
      const double ang = p * inv_freq[i].item<double>();
      const int64_t i0 = c.mla.rope_interleave ? 2 * i : i, i1 = c.mla.rope_interleave ? 2 * i + 1 : i + rope / 2;
      auto x0 = v[i0], x1 = v[i1];
      out[i0] = af * (x0 * std::cos(ang) - x1 * std::sin(ang));
      out[i1] = af * (x0 * std::sin(ang) + x1 * std::cos(ang));
    }
    return out;
  };
  std::vector<torch::Tensor> heads;
  for (int64_t h = 0; h < H; ++h) {
    auto qh = q.narrow(1, h * (nope + rope), nope + rope), kvh = kv.narrow(1, h * (nope + dv), nope + dv);
    std::vector<torch::Tensor> rows;
    for (int64_t t = 0; t < T; ++t) {
      auto qt_rot = rotate(qh[t].narrow(0, nope, rope), pos[t]);
      std::vector<double> scores;
      std::vector<int64_t> keys;
      for (int64_t s = 0; s <= t; ++s) {
        if (doc[s] != doc[t]) continue;
        const double nope_dot = torch::dot(qh[t].narrow(0, 0, nope), kvh[s].narrow(0, 0, nope)).item<double>();
        const double rope_dot = torch::dot(qt_rot, rotate(k_pe[s], pos[s])).item<double>();
        scores.push_back((nope_dot + rope_dot) * scale);
        keys.push_back(s);
      }
      const double mx = *std::max_element(scores.begin(), scores.end());
      double z = 0;
      for (double& sc : scores) z += (sc = std::exp(sc - mx));
      auto o = torch::zeros({dv}, x.options());
      for (size_t i = 0; i < keys.size(); ++i) o = o + (scores[i] / z) * kvh[keys[i]].narrow(0, nope, dv);
      rows.push_back(o);
    }
    heads.push_back(torch::stack(rows));  // [T, v]
  }
  return torch::matmul(torch::cat(heads, 1), a.o_proj->weight.t());  // [T, hidden]
}

struct MlaCase {
  TransformerConfig cfg;
  MlaAttention attn{nullptr};
};

MlaCase make_mla(nlohmann::json j, uint64_t seed) {
  MlaCase m{TransformerConfig::from_json(j, "c")};
  m.attn = MlaAttention(m.cfg);
  m.attn->to(torch::kFloat64);  // float64 throughout (see close_rel): independent of the CPU's BLAS kernels
  torch::NoGradGuard g;
  torch::manual_seed(seed);
  for (auto& p : m.attn->named_parameters())
    if (p.key().find("layernorm") == std::string::npos) p.value().normal_(0, 0.3);
    else p.value().uniform_(0.5, 1.5);
  return m;
}

torch::Tensor run_mla(MlaCase& m, const torch::Tensor& x, const torch::Tensor& pos, const torch::Tensor& doc) {
  RotaryEmbedding rope(m.cfg);
  AttentionInputs in;
  std::tie(in.cos, in.sin) = rope.tables(pos);
  in.allowed = attention_mask(doc, x.size(1), std::nullopt, torch::kCPU);
  return m.attn->forward(x, in);
}

}  // namespace

TEST(Yarn, InverseFrequenciesAndAttentionFactorMatchHuggingFaceFormulas) {
  // Golden values: Hugging Face's _compute_yarn_parameters in PyTorch (float32), see docs/moe.md.
  auto j = tiny_moe_config("deepseek_v3");
  j["qk_rope_head_dim"] = 8;
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 64},
                       {"mscale", 1.0}, {"mscale_all_dim", 0.8}};
  RotaryEmbedding a(TransformerConfig::from_json(j, "c"));
  std::vector<float> want = {1.0f, 0.0625f, 0.00249999994f, 0.000250000012f};  // ramp over dims (0, 2)
  ASSERT_EQ(a.inv_freq().numel(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(a.inv_freq()[i].item<float>(), want[i], want[i] * 1e-6) << i;
  EXPECT_NEAR(a.attention_scaling(), 1.0249579607969668, 1e-12);

  j["qk_rope_head_dim"] = 16;
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 40}, {"original_max_position_embeddings", 128},
                       {"beta_fast", 32}, {"beta_slow", 1}, {"mscale", 1.0}, {"mscale_all_dim", 1.0}};
  RotaryEmbedding b(TransformerConfig::from_json(j, "c"));
  want = {1.0f, 0.213453725f, 0.0349999964f, 0.000790569466f, 0.000250000012f, 7.90569466e-05f, 2.49999994e-05f,
          7.90569447e-06f};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(b.inv_freq()[i].item<float>(), want[i], want[i] * 1e-6) << i;
  EXPECT_EQ(b.attention_scaling(), 1.0);  // DeepSeek-V3: mscale == mscale_all_dim

  // A dense model with yarn (Qwen2.5 style): attention factor 0.1 ln(factor) + 1, untruncated range.
  auto d = tiny_config("qwen2");
  d["hidden_size"] = 64;  // head_dim 16
  d["rope_theta"] = 1e6;
  d["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 256}, {"truncate", false}};
  RotaryEmbedding q(TransformerConfig::from_json(d, "c"));
  want = {1.0f, 0.120666698f, 0.00963994488f, 0.00140585331f, 0.000250000012f, 4.44569851e-05f, 7.90569356e-06f,
          1.40585337e-06f};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(q.inv_freq()[i].item<float>(), want[i], want[i] * 1e-6) << i;
  EXPECT_NEAR(q.attention_scaling(), 1.138629436111989, 1e-12);
  auto [cos, sin] = q.tables(torch::zeros({1, 1}, torch::kInt64));
  EXPECT_NEAR(cos[0][0][0][0].item<float>(), 1.138629436111989, 1e-6);  // cos and sin carry the factor
}

TEST(Mla, SoftmaxScaleIsOneOverSqrtQkHeadDimTimesMscaleSquared) {
  auto c = TransformerConfig::from_json(tiny_moe_config("deepseek_v3"), "c");  // nope 8 + rope 4, factor 4, 0.8
  EXPECT_NEAR(c.mla.softmax_scale, std::pow(mscale(4.0, 0.8), 2) / std::sqrt(12.0), 1e-12);
  EXPECT_EQ(c.head_dim, 4);  // the rotary tables cover the rope part
  auto j = tiny_moe_config("deepseek_v3");
  j.erase("rope_scaling");
  EXPECT_NEAR(TransformerConfig::from_json(j, "c").mla.softmax_scale, 1 / std::sqrt(12.0), 1e-12);
}

TEST(Mla, DeinterleaveMovesEvenDimsFirst) {
  auto y = deinterleave_rope(torch::arange(8, torch::kFloat32).view({1, 8}));
  EXPECT_TRUE(torch::equal(y, torch::tensor({{0.f, 2.f, 4.f, 6.f, 1.f, 3.f, 5.f, 7.f}})));
}

TEST(Mla, OutputShapesWithAndWithoutQLora) {
  for (const std::string family : {"deepseek_v3", "deepseek_v2"}) {
    auto m = make_mla(tiny_moe_config(family), 1);
    auto x = torch::randn({2, 5, 32}, torch::kFloat64);
    auto pos = torch::arange(5).unsqueeze(0).expand({2, 5});
    EXPECT_EQ(run_mla(m, x, pos, torch::Tensor()).sizes(), (std::vector<int64_t>{2, 5, 32})) << family;
  }
}

TEST(Mla, ForwardMatchesAPlainPerHeadImplementation) {
  // yarn with a non-trivial attention factor, q_lora, interleaved rope, two packed documents.
  for (bool interleave : {true, false}) {
    auto j = tiny_moe_config("deepseek_v3");
    j["rope_scaling"]["mscale"] = 0.9;  // attention factor mscale(4, .9) / mscale(4, .8) != 1
    j["rope_interleave"] = interleave;
    j["rms_norm_eps"] = 0.1;  // must not reach the latent norms
    auto m = make_mla(j, 4);
    torch::NoGradGuard g;
    auto x = torch::randn({1, 6, 32}, torch::kFloat64);
    const std::vector<int64_t> pos = {0, 1, 2, 3, 0, 1}, doc = {0, 0, 0, 0, 1, 1};
    auto y = run_mla(m, x, torch::tensor(pos).unsqueeze(0), torch::tensor(doc).unsqueeze(0));
    RotaryEmbedding rope(m.cfg);
    const double af = mscale(4.0, 0.9) / mscale(4.0, 0.8);
    EXPECT_NEAR(rope.attention_scaling(), af, 1e-12);
    auto want = naive_mla(*m.attn, m.cfg, x[0], pos, doc, rope.inv_freq(), af, m.cfg.mla.softmax_scale);
    EXPECT_TRUE(close_rel(y[0], want)) << "interleave " << interleave;
  }
  // V2-Lite shape: plain q_proj, no rope scaling.
  auto m = make_mla(tiny_moe_config("deepseek_v2"), 5);
  torch::NoGradGuard g;
  auto x = torch::randn({1, 4, 32}, torch::kFloat64);
  const std::vector<int64_t> pos = {0, 1, 2, 3}, doc = {0, 0, 0, 0};
  auto y = run_mla(m, x, torch::tensor(pos).unsqueeze(0), torch::tensor(doc).unsqueeze(0));
  RotaryEmbedding rope(m.cfg);
  auto want = naive_mla(*m.attn, m.cfg, x[0], pos, doc, rope.inv_freq(), 1.0, 1 / std::sqrt(12.0));
  EXPECT_TRUE(close_rel(y[0], want));
}

TEST(Mla, InterleavedLayoutIsDeepseeksPairRotationNotRotateHalf) {
  // The same weights give different outputs under the two layouts: the flag is not a no-op.
  auto j = tiny_moe_config("deepseek_v3");
  auto a = make_mla(j, 6);
  j["rope_interleave"] = false;
  auto b = make_mla(j, 6);
  torch::NoGradGuard g;
  auto x = torch::randn({1, 5, 32}, torch::kFloat64);
  auto pos = torch::arange(5).unsqueeze(0);
  EXPECT_FALSE(close_rel(run_mla(a, x, pos, {}), run_mla(b, x, pos, {}), 1e-2));
}

}  // namespace mla_test
