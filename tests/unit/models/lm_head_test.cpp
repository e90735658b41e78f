// The LM-head ops of models/lm_head.h at tp=1 against naive references on the full [N, V] logits
// in float64 (values, and the gradients of hidden and weight through autograd), and against golden
// values from PyTorch (tests/parity/lm_head_reference.py -> tests/assets/lm_head_golden.json).
//
// Tolerances: the ops compute in fp32 and the references in fp64, so the difference is fp32
// rounding summed over at most V = 64 vocabulary entries and H = 16 hidden units per value (a few
// hundred ulps at most, ~1e-5 relative), whatever order the BLAS kernels of the machine add in
// (ctest reruns this suite with OPENBLAS_CORETYPE=Haswell/Zen/Prescott). The divergences' gradients
// get kDivergenceTol: they are p_s (A - E) with A a difference of log-probs (up to ~20 here, where
// the teacher is unlikely), so the absolute rounding of the log-probs (an ulp of logits / T ~ 1e-6)
// reaches them multiplied by |A|; values keep kTol.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "models/lm_head.h"

namespace distillery {
namespace lm_head_test {

constexpr double kTol = 1e-5;
constexpr double kDivergenceTol = 5e-5;
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

// ---- generalized JSD ----

// TRL's generalized_jsd_loss per position, summed (float64, on log-probs [N, X] of the same outcomes).
torch::Tensor naive_jsd(const torch::Tensor& ls, const torch::Tensor& lt, double beta) {
  auto kl = [](const torch::Tensor& lp, const torch::Tensor& lq) {  // KL(p || q) per row
    return torch::where(lp.exp().gt(0), lp.exp() * (lp - lq), torch::zeros({}, lp.options())).sum(-1);
  };
  if (beta == 0) return kl(lt, ls).sum();
  if (beta == 1) return kl(ls, lt).sum();
  auto lm = torch::logaddexp(ls + std::log1p(-beta), lt + std::log(beta));
  return (beta * kl(lt, lm) + (1 - beta) * kl(ls, lm)).sum();
}

struct Teacher {
  torch::Tensor hidden, weight;  // [N, Ht], [V, Ht]
};

Teacher make_teacher(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({n, 8}), torch::randn({kVocab, 8}) * 0.7};
}

const std::vector<std::pair<double, double>> kBetaTemperature = {{0, 1}, {0, 2}, {0.3, 1}, {0.5, 0.7}, {1, 1}, {1, 2}};

TEST(FusedLinearGeneralizedJsd, DenseTeacherMatchesFloat64Reference) {
  const Case c = make_case(17, 8);
  const Teacher t = make_teacher(17, 9);
  const auto zt = torch::matmul(t.hidden, t.weight.t());  // [N, V] the teacher's logits
  for (const auto& bt : kBetaTemperature) {
    const double beta = bt.first, temperature = bt.second;
    const std::string what = "beta " + std::to_string(beta) + " T " + std::to_string(temperature);
    const auto up = torch::tensor(0.5);
    const Result want = run(c, torch::kDouble, up, [&](auto& h, auto& w) {
      return naive_jsd(log_softmax64(h, w, temperature), torch::log_softmax(zt.to(torch::kDouble) / temperature, -1),
                       beta);
    });
    for (int64_t chunk : {int64_t{17}, int64_t{6}}) {
      auto th = t.hidden.clone().requires_grad_();
      const Result got = run(c, torch::kFloat, up, [&](auto& h, auto& w) {
        return fused_linear_generalized_jsd_sum(h, w, DenseTeacher::from_hidden(th, t.weight), {beta, temperature},
                                                chunk);
      });
      expect_close(got, want, what + " from hidden, chunk " + std::to_string(chunk), kDivergenceTol);
      EXPECT_FALSE(th.grad().defined()) << "the teacher gets no gradient";
      const Result from_logits = run(c, torch::kFloat, up, [&](auto& h, auto& w) {
        return fused_linear_generalized_jsd_sum(h, w, DenseTeacher::from_logits(zt), {beta, temperature}, chunk);
      });
      expect_close(from_logits, want, what + " from logits, chunk " + std::to_string(chunk), kDivergenceTol);
    }
  }
}

// A padded vocabulary: the teacher puts -inf (probability 0) on the last entries, which add nothing
// to the forward KL or the JSD while the student is still pushed off them.
TEST(FusedLinearGeneralizedJsd, TeacherEntriesOfProbabilityZeroAddNothing) {
  const Case c = make_case(6, 10);
  auto zt = torch::randn({6, kVocab}) * 2;
  zt.narrow(1, kVocab - 5, 5).fill_(-std::numeric_limits<float>::infinity());
  for (double beta : {0.0, 0.5}) {
    const auto up = torch::tensor(1.0);
    const Result want = run(c, torch::kDouble, up, [&](auto& h, auto& w) {
      return naive_jsd(log_softmax64(h, w), torch::log_softmax(zt.to(torch::kDouble), -1), beta);
    });
    ASSERT_TRUE(std::isfinite(want.value.item<double>()));
    const Result got = run(c, torch::kFloat, up, [&](auto& h, auto& w) {
      return fused_linear_generalized_jsd_sum(h, w, DenseTeacher::from_logits(zt), {beta, 1.0}, 4);
    });
    expect_close(got, want, "beta " + std::to_string(beta), kDivergenceTol);
    EXPECT_TRUE(torch::isfinite(got.d_hidden).all().item<bool>());
  }
}

// The student's [N, V] log-probs -> [N, K + 1] buckets: the ids, then the rest (float64).
torch::Tensor naive_buckets(const torch::Tensor& lp, const torch::Tensor& ids) {
  auto rest = lp.scatter(1, ids, -std::numeric_limits<double>::infinity());
  return torch::cat({lp.gather(1, ids), torch::logsumexp(rest, 1, true)}, 1);
}

// The teacher's stored top-k log-probs [N, K] -> tempered [N, K + 1] buckets (float64).
torch::Tensor naive_teacher_buckets(const torch::Tensor& top, double temperature) {
  auto tail = torch::log1p(-top.exp().sum(1, true));
  auto b = torch::cat({top, tail}, 1) / temperature;
  return b - torch::logsumexp(b, 1, true);
}

TopKTeacher top_k_of(const torch::Tensor& teacher_logits, int64_t k) {
  auto [lp, ids] = torch::log_softmax(teacher_logits, -1).topk(k, -1);
  return {ids, lp};
}

TEST(FusedLinearGeneralizedJsd, TopKTeacherMatchesFloat64Reference) {
  const Case c = make_case(13, 11);
  const auto zt = torch::randn({13, kVocab}) * 2;
  for (int64_t k : {int64_t{1}, int64_t{5}}) {
    const TopKTeacher teacher = top_k_of(zt, k);
    for (const auto& bt : kBetaTemperature) {
    const double beta = bt.first, temperature = bt.second;
      const std::string what = "K " + std::to_string(k) + " beta " + std::to_string(beta) + " T " +
                               std::to_string(temperature);
      const auto up = torch::tensor(0.5);
      const Result want = run(c, torch::kDouble, up, [&](auto& h, auto& w) {
        return naive_jsd(naive_buckets(log_softmax64(h, w, temperature), teacher.ids),
                         naive_teacher_buckets(teacher.logprobs.to(torch::kDouble), temperature), beta);
      });
      for (int64_t chunk : {int64_t{13}, int64_t{4}}) {
        const Result got = run(c, torch::kFloat, up, [&](auto& h, auto& w) {
          return fused_linear_generalized_jsd_sum(h, w, teacher, {beta, temperature}, chunk);
        });
        expect_close(got, want, what + ", chunk " + std::to_string(chunk), kDivergenceTol);
      }
    }
  }
}

// With K = V nothing is missing: the top-k divergence is the dense one, at any temperature.
TEST(FusedLinearGeneralizedJsd, TopKOfTheWholeVocabularyIsTheDenseDivergence) {
  const Case c = make_case(9, 12);
  const auto zt = torch::randn({9, kVocab}) * 2;
  const TopKTeacher teacher = top_k_of(zt, kVocab);
  for (const auto& bt : kBetaTemperature) {
    const double beta = bt.first, temperature = bt.second;
    const auto up = torch::tensor(1.0);
    const Result dense = run(c, torch::kFloat, up, [&](auto& h, auto& w) {
      return fused_linear_generalized_jsd_sum(h, w, DenseTeacher::from_logits(zt), {beta, temperature}, 4);
    });
    const Result top_k = run(c, torch::kFloat, up, [&](auto& h, auto& w) {
      return fused_linear_generalized_jsd_sum(h, w, teacher, {beta, temperature}, 4);
    });
    expect_close(top_k, dense, "beta " + std::to_string(beta) + " T " + std::to_string(temperature), kDivergenceTol);
  }
}

TEST(FusedLinearGeneralizedJsd, RejectsBadTeachersAndParameters) {
  const Case c = make_case(4, 13);
  const auto zt = torch::randn({4, kVocab});
  const TopKTeacher good = top_k_of(zt, 3);
  const GeneralizedJsd kl{0, 1};
  EXPECT_NO_THROW(fused_linear_generalized_jsd_sum(c.hidden, c.weight, good, kl, 2));
  EXPECT_THROW(fused_linear_generalized_jsd_sum(c.hidden, c.weight, good, {1.5, 1}, 2), UserError);
  EXPECT_THROW(fused_linear_generalized_jsd_sum(c.hidden, c.weight, good, {0.5, 0}, 2), UserError);
  TopKTeacher out_of_range{good.ids.clone(), good.logprobs};
  out_of_range.ids[1][2] = kVocab;
  EXPECT_THROW(fused_linear_generalized_jsd_sum(c.hidden, c.weight, out_of_range, kl, 2), UserError);
  TopKTeacher repeated{good.ids.clone(), good.logprobs};
  repeated.ids[3][1] = repeated.ids[3][0];
  EXPECT_THROW(fused_linear_generalized_jsd_sum(c.hidden, c.weight, repeated, kl, 2), UserError);
  const TopKTeacher logits{good.ids, zt.gather(1, good.ids)};  // logits, not log-probs
  EXPECT_THROW(fused_linear_generalized_jsd_sum(c.hidden, c.weight, logits, kl, 2), UserError);
  const auto other_vocab = DenseTeacher::from_logits(torch::randn({4, kVocab + 2}));
  EXPECT_THROW(fused_linear_generalized_jsd_sum(c.hidden, c.weight, other_vocab, kl, 2), UserError);
  const auto other_rows = DenseTeacher::from_hidden(torch::randn({5, 8}), torch::randn({kVocab, 8}));
  EXPECT_THROW(fused_linear_generalized_jsd_sum(c.hidden, c.weight, other_rows, kl, 2), UserError);
}

// ---- no tokens ----

TEST(LmHeadOps, NoTokensGiveZerosAndZeroGradients) {
  const Case c = make_case(0, 14);
  auto h = c.hidden.clone().requires_grad_();
  auto w = c.weight.clone().requires_grad_();
  auto ce = fused_linear_cross_entropy_sum(h, w, c.targets, 4);
  auto lp = fused_linear_token_log_probs(h, w, c.targets, 4);
  auto ent = fused_linear_entropy(h, w, 4);
  auto dense = fused_linear_generalized_jsd_sum(h, w, DenseTeacher::from_logits(torch::zeros({0, kVocab})), {0.5, 1}, 4);
  TopKTeacher none{torch::zeros({0, 3}, torch::kLong), torch::zeros({0, 3})};
  auto top_k = fused_linear_generalized_jsd_sum(h, w, none, {0.5, 1}, 4);
  EXPECT_EQ(lp.sizes().vec(), std::vector<int64_t>{0});
  EXPECT_EQ(ent.sizes().vec(), std::vector<int64_t>{0});
  (ce + dense + top_k + lp.sum() + ent.sum()).backward();
  EXPECT_EQ(ce.item<double>() + dense.item<double>() + top_k.item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(w.grad(), torch::zeros_like(w)));
  EXPECT_EQ(h.grad().sizes(), h.sizes());
}

// ---- golden values from PyTorch ----

// tests/assets/lm_head_golden.json; regenerate with /usr/bin/python3 tests/parity/lm_head_reference.py.
nlohmann::json golden() {
  std::ifstream in(DISTILLERY_SOURCE_DIR "/tests/assets/lm_head_golden.json");
  return nlohmann::json::parse(in);
}

torch::Tensor matrix(const nlohmann::json& rows, torch::ScalarType dtype) {
  std::vector<torch::Tensor> out;
  for (const auto& r : rows) out.push_back(torch::tensor(r.get<std::vector<double>>(), torch::kDouble));
  return torch::stack(out).to(dtype);
}

TEST(LmHeadOps, MatchTheGoldenValuesOfPyTorch) {
  const auto g = golden();
  const auto& in = g["inputs"];
  const auto hs = matrix(in["student_hidden"], torch::kFloat), ws = matrix(in["student_weight"], torch::kFloat);
  const auto ht = matrix(in["teacher_hidden"], torch::kFloat), wt = matrix(in["teacher_weight"], torch::kFloat);
  const auto targets = torch::tensor(in["targets"].get<std::vector<int64_t>>(), torch::kLong);
  const TopKTeacher top_k{matrix(in["top_k_ids"], torch::kLong), matrix(in["top_k_logprobs"], torch::kFloat)};
  torch::NoGradGuard no_grad;
  EXPECT_NEAR(fused_linear_cross_entropy_sum(hs, ws, targets, 2).item<double>(), g["cross_entropy_sum"].get<double>(),
              kTol * g["cross_entropy_sum"].get<double>());
  const auto want_lp = torch::tensor(g["token_log_probs"].get<std::vector<double>>(), torch::kDouble);
  EXPECT_LE(rel_err(fused_linear_token_log_probs(hs, ws, targets, 2), want_lp), kTol);
  const auto want_entropy = torch::tensor(g["entropy"].get<std::vector<double>>(), torch::kDouble);
  EXPECT_LE(rel_err(fused_linear_entropy(hs, ws, 2), want_entropy), kTol);
  for (const auto& e : g["dense_jsd_sum"]) {
    const GeneralizedJsd d{e["beta"].get<double>(), e["temperature"].get<double>()};
    const double got = fused_linear_generalized_jsd_sum(hs, ws, DenseTeacher::from_hidden(ht, wt), d, 2).item<double>();
    EXPECT_NEAR(got, e["value"].get<double>(), kTol * std::max(1.0, e["value"].get<double>())) << e.dump();
  }
  for (const auto& e : g["top_k_jsd_sum"]) {
    const GeneralizedJsd d{e["beta"].get<double>(), e["temperature"].get<double>()};
    const double got = fused_linear_generalized_jsd_sum(hs, ws, top_k, d, 2).item<double>();
    EXPECT_NEAR(got, e["value"].get<double>(), kTol * std::max(1.0, e["value"].get<double>())) << e.dump();
  }
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
