// The LM-head ops of models/lm_head.h at tp=1 against naive references on the full [N, V] logits
// in float64 (values, and the gradients of hidden and weight through autograd).
//
// Tolerances: the ops compute in fp32 and the references in fp64, so the difference is fp32
// rounding summed over at most V = 64 vocabulary entries and H = 16 hidden units per value (a few
// hundred ulps at most, ~1e-5 relative), whatever order the BLAS kernels of the machine add in
// (ctest reruns this suite with OPENBLAS_CORETYPE=Haswell/Zen/Prescott).
#include <gtest/gtest.h>

#include "common/error.h"
#include "models/lm_head.h"

namespace distillery {
namespace lm_head_test {

constexpr double kTol = 1e-5;
constexpr int64_t kVocab = 64, kHidden = 16;

// Largest absolute difference, relative to the reference's magnitude where that exceeds 1.
double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  const auto a = got.to(torch::kDouble), b = want.to(torch::kDouble);
  if (b.numel() == 0) return 0;
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a - b).abs().max().item<double>() / scale;
}

struct Case {
  torch::Tensor hidden;   // [N, H] fp32
  torch::Tensor weight;   // [V, H] fp32
  torch::Tensor targets;  // [N] int64
};

Case make_case(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({n, kHidden}), torch::randn({kVocab, kHidden}) * 0.5, torch::randint(kVocab, {n}, torch::kLong)};
}

// An op's value and the gradients of hidden and weight after backward of sum(value * upstream).
struct Result {
  torch::Tensor value, d_hidden, d_weight;
};

// fn(hidden, weight) on fresh leaves of the given dtype; upstream: the backward weights (same shape
// as the value; 0-dim for sums).
template <typename Fn>
Result run(const Case& c, torch::ScalarType dtype, const torch::Tensor& upstream, Fn&& fn) {
  auto h = c.hidden.to(dtype, /*non_blocking=*/false, /*copy=*/true).requires_grad_();
  auto w = c.weight.to(dtype, /*non_blocking=*/false, /*copy=*/true).requires_grad_();
  auto value = fn(h, w);
  (value * upstream.to(value.scalar_type())).sum().backward();
  return {value.detach(), h.grad(), w.grad()};
}

// Values within kTol, gradients within grad_tol.
void expect_close(const Result& got, const Result& want, const std::string& what, double grad_tol = kTol) {
  const double tol = grad_tol;
  ASSERT_EQ(got.value.sizes(), want.value.sizes()) << what;
  EXPECT_EQ(got.value.scalar_type(), torch::kFloat) << what;
  EXPECT_LE(rel_err(got.value, want.value), kTol) << what << ": " << got.value << " vs " << want.value;
  EXPECT_LE(rel_err(got.d_hidden, want.d_hidden), tol) << what << " hidden gradient";
  EXPECT_LE(rel_err(got.d_weight, want.d_weight), tol) << what << " weight gradient";
}

torch::Tensor log_softmax64(const torch::Tensor& h, const torch::Tensor& w, double temperature = 1.0) {
  return torch::log_softmax(torch::matmul(h, w.t()) / temperature, -1);  // [N, V]
}

// ---- cross-entropy ----

// The reference: torch's cross_entropy on the full logits, float64, ignore_index -100.
torch::Tensor naive_ce(const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& t) {
  return torch::nn::functional::cross_entropy(
      torch::matmul(h, w.t()), t, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

TEST(FusedLinearCrossEntropy, MatchesFloat64ReferenceInOneChunkOrMany) {
  const Case c = make_case(37, 1);
  const auto up = torch::tensor(0.5);
  const Result want = run(c, torch::kDouble, up, [&](auto& h, auto& w) { return naive_ce(h, w, c.targets); });
  for (int64_t chunk : {int64_t{37}, int64_t{64}, int64_t{8}, int64_t{7}, int64_t{1}}) {
    const Result got = run(c, torch::kFloat, up, [&](auto& h, auto& w) {
      return fused_linear_cross_entropy_sum(h, w, c.targets, chunk);
    });
    expect_close(got, want, "chunk " + std::to_string(chunk));
  }
}

TEST(FusedLinearCrossEntropy, IgnoredTargetsAddNothingAndGetNoGradient) {
  Case c = make_case(11, 2);
  c.targets.index_put_({torch::tensor({0, 4, 5, 10})}, kIgnoreIndex);
  const auto up = torch::tensor(1.0);
  const Result want = run(c, torch::kDouble, up, [&](auto& h, auto& w) { return naive_ce(h, w, c.targets); });
  const Result got = run(c, torch::kFloat, up, [&](auto& h, auto& w) {
    return fused_linear_cross_entropy_sum(h, w, c.targets, 3);
  });
  expect_close(got, want, "ignored targets");
  EXPECT_EQ(got.d_hidden[4].abs().sum().item<double>(), 0.0);
}

// tp=1 must keep the arithmetic of the original single-rank function bit for bit (the quickstart's
// losses are compared before and after). This is that function's arithmetic, written out.
TEST(FusedLinearCrossEntropy, KeepsTheOriginalSingleRankArithmeticBitForBit) {
  const Case c = make_case(29, 3);
  const int64_t chunk = 8;
  auto w32 = c.weight;
  auto total = torch::zeros({});
  auto dh = torch::empty_like(c.hidden), dw = torch::zeros_like(w32);
  for (int64_t s = 0; s < 29; s += chunk) {
    const int64_t len = std::min<int64_t>(chunk, 29 - s);
    auto h = c.hidden.narrow(0, s, len), t = c.targets.narrow(0, s, len);
    auto logits = torch::matmul(h, w32.t());
    auto lse = torch::logsumexp(logits, -1);
    total += (lse - logits.gather(1, t.unsqueeze(1)).squeeze(1)).sum();
    auto g = logits.sub_(lse.unsqueeze(1)).exp_();
    g.scatter_add_(1, t.unsqueeze(1), -torch::ones({len, 1}));
    dh.narrow(0, s, len).copy_(torch::matmul(g, w32));
    dw.addmm_(g.t(), h);
  }
  const auto up = torch::tensor(0.25);
  const Result got = run(c, torch::kFloat, up, [&](auto& h, auto& w) {
    return fused_linear_cross_entropy_sum(h, w, c.targets, chunk);
  });
  EXPECT_TRUE(torch::equal(got.value, total));
  EXPECT_TRUE(torch::equal(got.d_hidden, dh * up));
  EXPECT_TRUE(torch::equal(got.d_weight, dw * up));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(fused_linear_cross_entropy_sum(c.hidden, c.weight, c.targets, chunk), total));
}

TEST(FusedLinearCrossEntropy, BFloat16InputsGetBFloat16Gradients) {
  Case c = make_case(8, 4);
  c.hidden = c.hidden.to(torch::kBFloat16).to(torch::kFloat);  // values exact in bf16
  c.weight = c.weight.to(torch::kBFloat16).to(torch::kFloat);
  const auto up = torch::tensor(1.0);
  const Result want = run(c, torch::kDouble, up, [&](auto& h, auto& w) { return naive_ce(h, w, c.targets); });
  const Result got = run(c, torch::kBFloat16, up, [&](auto& h, auto& w) {
    return fused_linear_cross_entropy_sum(h, w, c.targets, 3);
  });
  EXPECT_EQ(got.d_hidden.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(got.d_weight.scalar_type(), torch::kBFloat16);
  // The loss is computed in fp32 from exact inputs; the gradients are rounded to bf16 once.
  EXPECT_LE(rel_err(got.value, want.value), kTol);
  EXPECT_LE(rel_err(got.d_hidden, want.d_hidden), 1e-2);
  EXPECT_LE(rel_err(got.d_weight, want.d_weight), 1e-2);
}

TEST(FusedLinearCrossEntropy, RejectsTargetsOutsideTheVocabulary) {
  Case c = make_case(4, 5);
  c.targets[2] = kVocab;
  EXPECT_THROW(fused_linear_cross_entropy_sum(c.hidden, c.weight, c.targets, 4), UserError);
  c.targets[2] = -1;
  EXPECT_THROW(fused_linear_cross_entropy_sum(c.hidden, c.weight, c.targets, 4), UserError);
}

// ---- per-token log-probs and entropy ----

TEST(FusedLinearTokenLogProbs, MatchesFloat64ReferenceWithIgnoredTargets) {
  Case c = make_case(23, 6);
  c.targets.index_put_({torch::tensor({2, 3, 22})}, kIgnoreIndex);
  const auto ignored = c.targets.eq(kIgnoreIndex);
  const auto up = torch::randn({23});  // a per-token upstream gradient, as GRPO's
  const Result want = run(c, torch::kDouble, up, [&](auto& h, auto& w) {
    auto lp = log_softmax64(h, w).gather(1, c.targets.clamp_min(0).unsqueeze(1)).squeeze(1);
    return lp.masked_fill(ignored, 0);
  });
  for (int64_t chunk : {int64_t{23}, int64_t{5}, int64_t{1}}) {
    const Result got = run(c, torch::kFloat, up, [&](auto& h, auto& w) {
      return fused_linear_token_log_probs(h, w, c.targets, chunk);
    });
    expect_close(got, want, "chunk " + std::to_string(chunk));
    EXPECT_EQ(got.value[3].item<float>(), 0.0f);
    EXPECT_EQ(got.d_hidden[3].abs().sum().item<double>(), 0.0);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(fused_linear_token_log_probs(c.hidden, c.weight, c.targets, chunk), got.value));
  }
}

TEST(FusedLinearEntropy, MatchesFloat64Reference) {
  const Case c = make_case(19, 7);
  const auto up = torch::randn({19});
  const Result want = run(c, torch::kDouble, up, [&](auto& h, auto& w) {
    auto lp = log_softmax64(h, w);
    return -(lp.exp() * lp).sum(-1);
  });
  for (int64_t chunk : {int64_t{19}, int64_t{4}}) {
    const Result got = run(c, torch::kFloat, up, [&](auto& h, auto& w) { return fused_linear_entropy(h, w, chunk); });
    expect_close(got, want, "chunk " + std::to_string(chunk));
  }
}

// ---- no tokens ----

TEST(LmHeadOps, NoTokensGiveZerosAndZeroGradients) {
  const Case c = make_case(0, 14);
  auto h = c.hidden.clone().requires_grad_();
  auto w = c.weight.clone().requires_grad_();
  auto ce = fused_linear_cross_entropy_sum(h, w, c.targets, 4);
  auto lp = fused_linear_token_log_probs(h, w, c.targets, 4);
  auto ent = fused_linear_entropy(h, w, 4);
  EXPECT_EQ(lp.sizes().vec(), std::vector<int64_t>{0});
  EXPECT_EQ(ent.sizes().vec(), std::vector<int64_t>{0});
  (ce + lp.sum() + ent.sum()).backward();
  EXPECT_EQ(ce.item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(w.grad(), torch::zeros_like(w)));
  EXPECT_EQ(h.grad().sizes(), h.sizes());
}

TEST(SelectTargets, KeepsOnlyLabelledPositions) {
  auto h = torch::arange(12, torch::kFloat32).view({1, 4, 3});
  auto t = torch::tensor({{-100, 5, -100, 7}}, torch::kInt64);
  auto [hs, ts] = select_targets(h, t);
  EXPECT_TRUE(torch::equal(ts, torch::tensor({5, 7}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(hs, torch::tensor({{3.f, 4.f, 5.f}, {9.f, 10.f, 11.f}})));
}

}  // namespace lm_head_test
}  // namespace distillery
