// The LM-head ops of models/lm_head.h with the vocabulary split over tp against the same op at tp=1:
// every rank draws the same full tensors (fixed seed) and keeps its rows of the output weight; the
// values must equal the tp=1 values up to fp32 summation order (1e-5 relative), the hidden states
// get the full gradient and the weight its rows of the full gradient, and values and hidden
// gradients hold the same bits on every tp rank. The divergences' gradients get kDivergenceTol, as in
// tests/unit/models/lm_head_test.cpp (they carry the log-probs' rounding times |log p_s - log p_t|). Run on the whole world as the tp group (tp=2 and 4
// under the np2/np4 entries), and with 4 ranks also on the tp=2 groups of a dp=2 x tp=2 mesh.
#include <gtest/gtest.h>

#include "dist_util.h"
#include "common/error.h"
#include "models/lm_head.h"

namespace distillery {
namespace lm_head_dist_test {

using dist_testing::rel_err;
using dist_testing::same_on_every_rank;
using dist_testing::tp_groups;
using dist_testing::where;
using parallel::Communicator;
using parallel::Runtime;

constexpr int64_t kVocab = 64;  // divisible by 1, 2 and 4
constexpr int64_t kHidden = 16;
constexpr double kTol = 1e-5;
constexpr double kDivergenceTol = 5e-5;

int64_t shard_rows(const Communicator& tp) { return kVocab / tp.size(); }
int64_t shard_start(const Communicator& tp) { return tp.rank() * shard_rows(tp); }
torch::Tensor my_rows(const torch::Tensor& full, const Communicator& tp) {
  return full.narrow(0, shard_start(tp), shard_rows(tp));
}
torch::Tensor my_cols(const torch::Tensor& full, const Communicator& tp) {
  return full.narrow(1, shard_start(tp), shard_rows(tp));
}

struct Case {
  torch::Tensor hidden;   // [N, H]
  torch::Tensor weight;   // [V, H]
  torch::Tensor targets;  // [N]
};

Case make_case(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({n, kHidden}), torch::randn({kVocab, kHidden}) * 0.5, torch::randint(kVocab, {n}, torch::kLong)};
}

struct Result {
  torch::Tensor value, d_hidden, d_weight;
};

// op(hidden, weight, tp) on fresh leaves, weight the whole [V, H] (tp null) or this rank's rows;
// backward of sum(value * upstream).
using Op = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const TpGroup&)>;

Result run(const Case& c, const torch::Tensor& upstream, const Op& op, const TpGroup& tp,
           torch::ScalarType dtype = torch::kFloat) {
  auto h = c.hidden.to(dtype, false, /*copy=*/true).requires_grad_();
  auto w = (tp ? my_rows(c.weight, *tp) : c.weight).to(dtype, false, /*copy=*/true).requires_grad_();
  auto value = op(h, w, tp);
  (value * upstream).sum().backward();
  return {value.detach(), h.grad(), w.grad()};
}

// tp equals tp=1 (values, hidden gradient, this rank's weight rows), identical on every tp rank.
void expect_tp_matches_one_rank(const Case& c, const torch::Tensor& upstream, const Op& op, const TpGroup& tp,
                                const std::string& what, torch::ScalarType dtype = torch::kFloat, double tol = kTol) {
  const Result want = run(c, upstream, op, nullptr, dtype);
  const Result got = run(c, upstream, op, tp, dtype);
  const std::string ctx = what + ", " + where(*tp);
  ASSERT_EQ(got.value.sizes(), want.value.sizes()) << ctx;
  EXPECT_LE(rel_err(got.value, want.value), kTol) << ctx << ": " << got.value << " vs " << want.value;
  EXPECT_LE(rel_err(got.d_hidden, want.d_hidden), tol) << ctx << " hidden gradient";
  EXPECT_LE(rel_err(got.d_weight, my_rows(want.d_weight, *tp)), tol) << ctx << " weight gradient";
  EXPECT_TRUE(same_on_every_rank(got.value, *tp)) << ctx;
  EXPECT_TRUE(same_on_every_rank(got.d_hidden, *tp)) << ctx;
}

// ---- cross-entropy, log-probs, entropy ----

TEST(LmHeadTensorParallel, CrossEntropySumMatchesOneRankInOneChunkOrMany) {
  for (const auto& tp : tp_groups()) {
    Case c = make_case(10, 21);
    for (int64_t chunk : {int64_t{10}, int64_t{64}, int64_t{3}, int64_t{1}}) {
      expect_tp_matches_one_rank(c, torch::tensor(0.5), [&](auto& h, auto& w, auto& g) {
        return fused_linear_cross_entropy_sum(h, w, c.targets, chunk, g);
      }, tp, "chunk " + std::to_string(chunk));
    }
    c.targets.index_put_({torch::tensor({1, 7})}, kIgnoreIndex);
    expect_tp_matches_one_rank(c, torch::tensor(1.0), [&](auto& h, auto& w, auto& g) {
      return fused_linear_cross_entropy_sum(h, w, c.targets, 4, g);
    }, tp, "ignored targets");
  }
}

TEST(LmHeadTensorParallel, CrossEntropySumWithTargetsAllInOneShard) {
  for (const auto& tp : tp_groups()) {
    for (int owner : {0, tp->size() - 1}) {
      Case c = make_case(9, 22);
      c.targets = torch::randint(shard_rows(*tp), {9}, torch::kLong) + owner * shard_rows(*tp);
      expect_tp_matches_one_rank(c, torch::tensor(1.0), [&](auto& h, auto& w, auto& g) {
        return fused_linear_cross_entropy_sum(h, w, c.targets, 4, g);
      }, tp, "targets in shard " + std::to_string(owner));
    }
  }
}

TEST(LmHeadTensorParallel, CrossEntropySumInBFloat16) {
  for (const auto& tp : tp_groups()) {
    Case c = make_case(8, 24);
    c.hidden = c.hidden.to(torch::kBFloat16).to(torch::kFloat);  // values exact in bf16
    c.weight = c.weight.to(torch::kBFloat16).to(torch::kFloat);
    // Values in fp32 from exact inputs; gradients rounded to bf16 once (on both sides).
    expect_tp_matches_one_rank(c, torch::tensor(1.0), [&](auto& h, auto& w, auto& g) {
      return fused_linear_cross_entropy_sum(h, w, c.targets, 3, g);
    }, tp, "bf16", torch::kBFloat16, 1e-2);
  }
}

TEST(LmHeadTensorParallel, TokenLogProbsAndEntropyMatchOneRank) {
  for (const auto& tp : tp_groups()) {
    Case c = make_case(11, 25);
    c.targets.index_put_({torch::tensor({0, 5})}, kIgnoreIndex);
    const auto up = torch::randn({11});  // the same on every rank: same seed
    for (int64_t chunk : {int64_t{11}, int64_t{4}}) {
      expect_tp_matches_one_rank(c, up, [&](auto& h, auto& w, auto& g) {
        return fused_linear_token_log_probs(h, w, c.targets, chunk, g);
      }, tp, "log-probs, chunk " + std::to_string(chunk));
      expect_tp_matches_one_rank(c, up, [&](auto& h, auto& w, auto& g) {
        return fused_linear_entropy(h, w, chunk, g);
      }, tp, "entropy, chunk " + std::to_string(chunk));
    }
  }
}

// ---- generalized JSD ----

const std::vector<std::pair<double, double>> kBetaTemperature = {{0, 1}, {0.5, 2}, {1, 0.7}};

TEST(LmHeadTensorParallel, DenseJsdMatchesOneRank) {
  for (const auto& tp : tp_groups()) {
    const Case c = make_case(10, 31);
    torch::manual_seed(32);
    const auto th = torch::randn({10, 8}), tw = torch::randn({kVocab, 8}) * 0.7;
    const auto zt = torch::matmul(th, tw.t());  // [N, V]
    for (const auto& bt : kBetaTemperature) {
    const double beta = bt.first, temperature = bt.second;
      const GeneralizedJsd d{beta, temperature};
      const std::string what = "beta " + std::to_string(beta) + " T " + std::to_string(temperature);
      // The teacher sharded like the student, or whole on every rank, or as logits.
      expect_tp_matches_one_rank(c, torch::tensor(0.5), [&](auto& h, auto& w, auto& g) {
        return fused_linear_generalized_jsd_sum(h, w, DenseTeacher::from_hidden(th, g ? my_rows(tw, *g) : tw), d, 3, g);
      }, tp, what + " sharded teacher", torch::kFloat, kDivergenceTol);
      expect_tp_matches_one_rank(c, torch::tensor(0.5), [&](auto& h, auto& w, auto& g) {
        return fused_linear_generalized_jsd_sum(h, w, DenseTeacher::from_hidden(th, tw), d, 4, g);
      }, tp, what + " whole teacher", torch::kFloat, kDivergenceTol);
      expect_tp_matches_one_rank(c, torch::tensor(0.5), [&](auto& h, auto& w, auto& g) {
        return fused_linear_generalized_jsd_sum(h, w, DenseTeacher::from_logits(g ? my_cols(zt, *g) : zt), d, 10, g);
      }, tp, what + " teacher logits", torch::kFloat, kDivergenceTol);
    }
  }
}

TEST(LmHeadTensorParallel, TopKJsdMatchesOneRank) {
  for (const auto& tp : tp_groups()) {
    const Case c = make_case(10, 33);
    torch::manual_seed(34);
    const auto top = torch::log_softmax(torch::randn({10, kVocab}) * 2, -1).topk(5, -1);
    const TopKTeacher teacher{std::get<1>(top), std::get<0>(top)};
    for (const auto& bt : kBetaTemperature) {
    const double beta = bt.first, temperature = bt.second;
      const GeneralizedJsd d{beta, temperature};
      expect_tp_matches_one_rank(c, torch::tensor(0.5), [&](auto& h, auto& w, auto& g) {
        return fused_linear_generalized_jsd_sum(h, w, teacher, d, 3, g);
      }, tp, "beta " + std::to_string(beta) + " T " + std::to_string(temperature), torch::kFloat, kDivergenceTol);
    }
    // K = V: no tail on either side.
    const auto whole = torch::log_softmax(torch::randn({10, kVocab}), -1).topk(kVocab, -1);
    const TopKTeacher everything{std::get<1>(whole), std::get<0>(whole)};
    expect_tp_matches_one_rank(c, torch::tensor(1.0), [&](auto& h, auto& w, auto& g) {
      return fused_linear_generalized_jsd_sum(h, w, everything, {0.5, 1}, 4, g);
    }, tp, "K = V", torch::kFloat, kDivergenceTol);
  }
}

// ---- errors and no tokens ----

TEST(LmHeadTensorParallel, RejectsIdsOutsideTheVocabularyOnEveryRank) {
  for (const auto& tp : tp_groups()) {
    Case c = make_case(4, 41);
    c.targets[2] = kVocab;
    const auto w = my_rows(c.weight, *tp);
    EXPECT_THROW(fused_linear_cross_entropy_sum(c.hidden, w, c.targets, 4, tp), UserError) << where(*tp);
    EXPECT_THROW(fused_linear_token_log_probs(c.hidden, w, c.targets, 4, tp), UserError) << where(*tp);
    const TopKTeacher teacher{c.targets.view({4, 1}), torch::full({4, 1}, -1.0)};
    EXPECT_THROW(fused_linear_generalized_jsd_sum(c.hidden, w, teacher, {0, 1}, 4, tp), UserError) << where(*tp);
  }
}

// A tp group with no tokens makes no collective while another tp group (another dp replica) with
// tokens makes its own; afterwards a world-wide sum still matches up, so nobody is left waiting.
TEST(LmHeadTensorParallel, NoTokensNoCollectivesAndZeroGradients) {
  for (const auto& tp : tp_groups()) {
    // With two tp groups, the second has tokens; with one, nobody does.
    const bool has_tokens = tp->size() < Runtime::get().world->size() && Runtime::get().world->rank() >= tp->size();
    const int64_t n = has_tokens ? 5 : 0;
    const Case c = make_case(n, 42);
    auto h = c.hidden.clone().requires_grad_();
    auto w = my_rows(c.weight, *tp).clone().requires_grad_();
    auto ce = fused_linear_cross_entropy_sum(h, w, c.targets, 2, tp);
    auto lp = fused_linear_token_log_probs(h, w, c.targets, 2, tp);
    auto ent = fused_linear_entropy(h, w, 2, tp);
    auto dense = fused_linear_generalized_jsd_sum(h, w, DenseTeacher::from_logits(torch::randn({n, shard_rows(*tp)})),
                                                  {0.5, 1}, 2, tp);
    const TopKTeacher top{c.targets.view({n, 1}), torch::full({n, 1}, -0.5)};
    auto top_k = fused_linear_generalized_jsd_sum(h, w, top, {0.5, 1}, 2, tp);
    (ce + lp.sum() + ent.sum() + dense + top_k).backward();
    if (n == 0) {
      EXPECT_EQ(ce.item<double>() + dense.item<double>() + top_k.item<double>(), 0.0);
      EXPECT_TRUE(torch::equal(w.grad(), torch::zeros_like(w))) << where(*tp);
      EXPECT_EQ(h.grad().sizes(), h.sizes());
    } else {
      EXPECT_GT(ce.item<double>(), 0.0);
    }
    torch::Tensor probe = torch::ones({1}, torch::kLong);
    Runtime::get().world->allreduce(probe);
    EXPECT_EQ(probe.item<int64_t>(), Runtime::get().world->size()) << where(*tp);
  }
}

}  // namespace lm_head_dist_test
}  // namespace distillery
