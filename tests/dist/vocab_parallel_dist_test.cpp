// The vocab-parallel embedding, cross-entropy and KL against the same computation on the full
// vocabulary in one process: every rank draws the same full tensors (fixed seed), keeps its shard,
// and must get the full result (values) and its shard of the full gradient. Run on the whole world
// as the tp group, and with 4 ranks also on the tp=2 groups of a dp=2 x tp=2 mesh.
#include <gtest/gtest.h>

#include "parallel/mesh.h"
#include "parallel/runtime.h"
#include "parallel/vocab_parallel.h"
#include "common/error.h"
#include "models/lm_head.h"

namespace distillery::parallel {
namespace vocab_parallel_test {

constexpr int64_t kVocab = 64;  // divisible by 1, 2 and 4
constexpr int64_t kHidden = 16;
constexpr double kTol = 1e-5;

// The tp groups to test: the world, and with 4 ranks the tp pairs of a dp=2 x tp=2 mesh (made once;
// every rank reaches this in the same test, so the collective split matches).
std::vector<std::shared_ptr<Communicator>> tp_groups() {
  static const std::vector<std::shared_ptr<Communicator>> groups = [] {
    std::vector<std::shared_ptr<Communicator>> g{Runtime::get().world};
    if (Runtime::get().world->size() == 4) g.push_back(Mesh(Runtime::get().world, MeshConfig{2, 1}).tp());
    return g;
  }();
  return groups;
}

int64_t shard_rows(const Communicator& tp) { return kVocab / tp.size(); }
int64_t shard_start(const Communicator& tp) { return tp.rank() * shard_rows(tp); }
torch::Tensor my_rows(const torch::Tensor& full, const Communicator& tp) {
  return full.narrow(0, shard_start(tp), shard_rows(tp));
}
torch::Tensor my_cols(const torch::Tensor& full, const Communicator& tp) {
  return full.narrow(1, shard_start(tp), shard_rows(tp));
}

std::string where(const Communicator& tp) {
  return "tp rank " + std::to_string(tp.rank()) + "/" + std::to_string(tp.size());
}

// Largest absolute difference, relative to the reference's magnitude where that exceeds 1.
double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  const auto a = got.to(torch::kDouble), b = want.to(torch::kDouble);
  if (b.numel() == 0) return 0;
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a - b).abs().max().item<double>() / scale;
}

// `t` holds the same bits on every rank of `c`.
bool same_on_every_rank(const torch::Tensor& t, Communicator& c) {
  auto all = c.allgather(t.detach().reshape({1, -1}).contiguous());
  for (int64_t r = 1; r < all.size(0); ++r)
    if (!torch::equal(all[r], all[0])) return false;
  return true;
}

// ---- embedding ----

TEST(VocabParallelEmbedding, MatchesFullLookupAndGetsItsRowsOfTheGradient) {
  for (const auto& tp : tp_groups()) {
    torch::manual_seed(11);
    auto full = torch::randn({kVocab, kHidden});
    auto ids = torch::randint(kVocab, {3, 7}, torch::kLong);
    ids[0][0] = 0;
    ids[0][1] = kVocab - 1;  // both ends of the vocabulary
    ids[1][0] = ids[1][1];   // a repeated id: its row gradient is a sum
    auto upstream = torch::randn({3, 7, kHidden});

    auto full_w = full.clone().requires_grad_();
    auto want = torch::embedding(full_w, ids);
    (want * upstream).sum().backward();

    auto shard = my_rows(full, *tp).clone().requires_grad_();
    auto got = vocab_parallel_embedding(ids, shard, shard_start(*tp), tp);
    (got * upstream).sum().backward();

    ASSERT_EQ(got.sizes(), want.sizes());
    // One rank contributes the row, the others exact zeros: the sum is the row itself.
    EXPECT_TRUE(torch::equal(got, want.detach())) << where(*tp);
    EXPECT_LE(rel_err(shard.grad(), my_rows(full_w.grad(), *tp)), kTol) << where(*tp);
  }
}

TEST(VocabParallelEmbedding, RejectsIdsOutsideTheVocabularyOnEveryRank) {
  for (const auto& tp : tp_groups()) {
    auto shard = torch::zeros({shard_rows(*tp), kHidden});
    auto ids = torch::tensor({int64_t{3}, kVocab}, torch::kLong).view({1, 2});
    EXPECT_THROW(vocab_parallel_embedding(ids, shard, shard_start(*tp), tp), UserError) << where(*tp);
  }
}

// ---- the exchanges of the LM-head ops ----

TEST(GatherVocabColumns, GivesTheFullLogitsOnEveryRank) {
  for (const auto& tp : tp_groups()) {
    torch::manual_seed(12);
    auto full = torch::randn({2, 5, kVocab});  // [B, T, V]
    auto got = gather_vocab_columns(full.narrow(2, shard_start(*tp), shard_rows(*tp)), tp);
    EXPECT_TRUE(torch::equal(got, full)) << where(*tp);
  }
}

TEST(GatherShardStats, StacksEveryRanksStatisticsInRankOrder) {
  for (const auto& tp : tp_groups()) {
    auto mine = torch::arange(6, torch::kFloat).view({2, 3}) + 10 * tp->rank();
    auto all = gather_shard_stats(mine, tp.get());
    ASSERT_EQ(all.sizes().vec(), (std::vector<int64_t>{tp->size(), 2, 3})) << where(*tp);
    for (int r = 0; r < tp->size(); ++r)
      EXPECT_TRUE(torch::equal(all[r], torch::arange(6, torch::kFloat).view({2, 3}) + 10 * r)) << where(*tp);
    auto partial = torch::full({4}, static_cast<float>(tp->rank() + 1));
    sum_shard_partials_(partial, tp.get());
    EXPECT_TRUE(torch::equal(partial, torch::full({4}, tp->size() * (tp->size() + 1) / 2.0f))) << where(*tp);
  }
}

// ---- cross-entropy ----

struct CeCase {
  torch::Tensor hidden;   // [N, H]
  torch::Tensor weight;   // [V, H]
  torch::Tensor targets;  // [N]
};

CeCase ce_case(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({n, kHidden}), torch::randn({kVocab, kHidden}) * 0.5, torch::randint(kVocab, {n}, torch::kLong)};
}

// Loss and gradients on the full vocabulary, backward of `scale` * loss.
struct CeResult {
  torch::Tensor loss, d_hidden, d_weight;
};

CeResult full_ce(const CeCase& c, double scale) {
  auto h = c.hidden.clone().requires_grad_();
  auto w = c.weight.clone().requires_grad_();
  auto loss = torch::nn::functional::cross_entropy(
      torch::matmul(h, w.t()), c.targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  (loss * scale).backward();
  return {loss.detach(), h.grad(), w.grad()};
}

CeResult sharded_ce(const CeCase& c, int64_t chunk, double scale, const std::shared_ptr<Communicator>& tp) {
  auto h = c.hidden.clone().requires_grad_();
  auto w = my_rows(c.weight, *tp).clone().requires_grad_();
  auto loss = vocab_parallel_cross_entropy_sum(h, w, c.targets, shard_start(*tp), chunk, tp);
  (loss * scale).backward();
  return {loss.detach(), h.grad(), w.grad()};
}

void expect_ce_matches(const CeCase& c, int64_t chunk, const std::shared_ptr<Communicator>& tp,
                       const std::string& what) {
  const CeResult want = full_ce(c, 0.5);
  const CeResult got = sharded_ce(c, chunk, 0.5, tp);
  const std::string ctx = what + ", chunk " + std::to_string(chunk) + ", " + where(*tp);
  EXPECT_LE(rel_err(got.loss, want.loss), kTol) << ctx << ": " << got.loss.item<double>() << " vs "
                                                << want.loss.item<double>();
  EXPECT_LE(rel_err(got.d_hidden, want.d_hidden), kTol) << ctx;
  EXPECT_LE(rel_err(got.d_weight, my_rows(want.d_weight, *tp)), kTol) << ctx;
  EXPECT_TRUE(same_on_every_rank(got.loss, *tp)) << ctx;
  EXPECT_TRUE(same_on_every_rank(got.d_hidden, *tp)) << ctx;
}

TEST(VocabParallelCrossEntropy, MatchesFullLossAndGradientsInOneChunkOrMany) {
  for (const auto& tp : tp_groups()) {
    const CeCase c = ce_case(10, 21);
    for (int64_t chunk : {int64_t{10}, int64_t{64}, int64_t{3}, int64_t{1}}) expect_ce_matches(c, chunk, tp, "random");
  }
}

TEST(VocabParallelCrossEntropy, TargetsAllInOneShard) {
  for (const auto& tp : tp_groups()) {
    for (int owner : {0, tp->size() - 1}) {
      CeCase c = ce_case(9, 22);
      c.targets = torch::randint(shard_rows(*tp), {9}, torch::kLong) + owner * shard_rows(*tp);
      expect_ce_matches(c, 4, tp, "targets in shard " + std::to_string(owner));
    }
  }
}

TEST(VocabParallelCrossEntropy, NoGradPathGivesTheSameLoss) {
  for (const auto& tp : tp_groups()) {
    const CeCase c = ce_case(10, 23);
    const CeResult want = full_ce(c, 1.0);
    torch::NoGradGuard no_grad;
    auto loss = vocab_parallel_cross_entropy_sum(c.hidden, my_rows(c.weight, *tp), c.targets, shard_start(*tp), 4, tp);
    EXPECT_FALSE(loss.requires_grad());
    EXPECT_LE(rel_err(loss, want.loss), kTol) << where(*tp);
    EXPECT_TRUE(same_on_every_rank(loss, *tp)) << where(*tp);
  }
}

TEST(VocabParallelCrossEntropy, BFloat16WeightGetsBFloat16Gradients) {
  for (const auto& tp : tp_groups()) {
    CeCase c = ce_case(8, 24);
    c.hidden = c.hidden.to(torch::kBFloat16).to(torch::kFloat);  // values exact in bf16
    c.weight = c.weight.to(torch::kBFloat16).to(torch::kFloat);
    const CeResult want = full_ce(c, 1.0);
    auto h = c.hidden.to(torch::kBFloat16).requires_grad_();
    auto w = my_rows(c.weight, *tp).to(torch::kBFloat16).requires_grad_();
    auto loss = vocab_parallel_cross_entropy_sum(h, w, c.targets, shard_start(*tp), 3, tp);
    loss.backward();
    EXPECT_EQ(loss.scalar_type(), torch::kFloat);
    EXPECT_EQ(h.grad().scalar_type(), torch::kBFloat16);
    EXPECT_EQ(w.grad().scalar_type(), torch::kBFloat16);
    // The loss is computed in fp32 from exact inputs; the gradients are rounded to bf16 once.
    EXPECT_LE(rel_err(loss, want.loss), kTol) << where(*tp);
    EXPECT_LE(rel_err(h.grad(), want.d_hidden), 1e-2) << where(*tp);
    EXPECT_LE(rel_err(w.grad(), my_rows(want.d_weight, *tp)), 1e-2) << where(*tp);
  }
}

TEST(VocabParallelCrossEntropy, OneRankGroupIsTheFusedLoss) {
  const CeCase c = ce_case(10, 25);
  auto local = std::make_shared<LocalCommunicator>();
  auto h1 = c.hidden.clone().requires_grad_(), w1 = c.weight.clone().requires_grad_();
  auto h2 = c.hidden.clone().requires_grad_(), w2 = c.weight.clone().requires_grad_();
  auto got = vocab_parallel_cross_entropy_sum(h1, w1, c.targets, 0, 4, local);
  auto want = fused_linear_cross_entropy_sum(h2, w2, c.targets, 4);
  got.backward();
  want.backward();
  EXPECT_TRUE(torch::equal(got, want));
  EXPECT_TRUE(torch::equal(h1.grad(), h2.grad()));
  EXPECT_TRUE(torch::equal(w1.grad(), w2.grad()));
}

TEST(VocabParallelCrossEntropy, RejectsTargetsOutsideTheVocabularyOnEveryRank) {
  for (const auto& tp : tp_groups()) {
    CeCase c = ce_case(4, 26);
    c.targets[2] = kVocab;
    EXPECT_THROW(vocab_parallel_cross_entropy_sum(c.hidden, my_rows(c.weight, *tp), c.targets, shard_start(*tp), 4, tp),
                 UserError)
        << where(*tp);
  }
}

// ---- KL divergence ----

// Sum over tokens of KL(softmax(t/T) || softmax(s/T)) on the full vocabulary; teacher entries of
// probability 0 (logit -inf) left out, as 0 * log 0 = 0.
torch::Tensor full_kl(const torch::Tensor& student, const torch::Tensor& teacher, double temperature) {
  auto logp_s = torch::log_softmax(student / temperature, -1);
  auto logp_t = torch::log_softmax(teacher / temperature, -1);
  auto p_t = logp_t.exp();
  return torch::where(p_t.gt(0), p_t * (logp_t - logp_s), torch::zeros({}, p_t.options())).sum();
}

TEST(VocabParallelKlDiv, MatchesFullKlAndStudentGradients) {
  for (const auto& tp : tp_groups()) {
    for (double temperature : {1.0, 2.0, 0.5}) {
      torch::manual_seed(31);
      auto student = torch::randn({6, kVocab}) * 3, teacher = torch::randn({6, kVocab}) * 3;
      auto s_full = student.clone().requires_grad_();
      auto want = full_kl(s_full, teacher, temperature);
      (want * 0.7).backward();
      // Cross-check the hand formula against torch's own kl_div once.
      auto torch_kl = torch::kl_div(torch::log_softmax(student / temperature, -1),
                                    torch::log_softmax(teacher / temperature, -1), at::Reduction::Sum, true);
      ASSERT_LE(rel_err(want, torch_kl), kTol);

      auto s = my_cols(student, *tp).clone().requires_grad_();
      auto t = my_cols(teacher, *tp).clone().requires_grad_();
      auto got = vocab_parallel_kl_div_sum(s, t, temperature, tp);
      (got * 0.7).backward();
      const std::string ctx = "T " + std::to_string(temperature) + ", " + where(*tp);
      EXPECT_LE(rel_err(got, want.detach()), kTol) << ctx << ": " << got.item<double>() << " vs " << want.item<double>();
      EXPECT_LE(rel_err(s.grad(), my_cols(s_full.grad(), *tp)), kTol) << ctx;
      EXPECT_FALSE(t.grad().defined()) << "the teacher gets no gradient";
      EXPECT_TRUE(same_on_every_rank(got, *tp)) << ctx;

      torch::NoGradGuard no_grad;
      auto no_grad_value = vocab_parallel_kl_div_sum(s, t, temperature, tp);
      EXPECT_TRUE(torch::equal(no_grad_value, got.detach())) << ctx;
    }
  }
}

TEST(VocabParallelKlDiv, BFloat16LogitsAreComputedInFloat32) {
  for (const auto& tp : tp_groups()) {
    torch::manual_seed(32);
    auto student = (torch::randn({5, kVocab}) * 3).to(torch::kBFloat16);
    auto teacher = (torch::randn({5, kVocab}) * 3).to(torch::kBFloat16);
    auto s_full = student.to(torch::kFloat).requires_grad_();
    auto want = full_kl(s_full, teacher.to(torch::kFloat), 1.0);
    want.backward();
    auto s = my_cols(student, *tp).clone().requires_grad_();
    auto got = vocab_parallel_kl_div_sum(s, my_cols(teacher, *tp), 1.0, tp);
    got.backward();
    EXPECT_EQ(got.scalar_type(), torch::kFloat);
    EXPECT_EQ(s.grad().scalar_type(), torch::kBFloat16);
    EXPECT_LE(rel_err(got, want.detach()), kTol) << where(*tp);
    EXPECT_LE(rel_err(s.grad(), my_cols(s_full.grad(), *tp)), 1e-2) << where(*tp);
  }
}

// A padded vocabulary: the teacher puts -inf (probability 0) on the last entries, which then
// add nothing to the loss, while the student still gets pushed off them.
TEST(VocabParallelKlDiv, TeacherEntriesOfProbabilityZeroAddNothing) {
  for (const auto& tp : tp_groups()) {
    torch::manual_seed(33);
    auto student = torch::randn({4, kVocab}) * 2, teacher = torch::randn({4, kVocab}) * 2;
    teacher.narrow(1, kVocab - 5, 5).fill_(-std::numeric_limits<float>::infinity());
    auto s_full = student.clone().requires_grad_();
    auto want = full_kl(s_full, teacher, 1.0);
    want.backward();
    ASSERT_TRUE(std::isfinite(want.item<double>()));
    auto s = my_cols(student, *tp).clone().requires_grad_();
    auto got = vocab_parallel_kl_div_sum(s, my_cols(teacher, *tp), 1.0, tp);
    got.backward();
    EXPECT_LE(rel_err(got, want.detach()), kTol) << where(*tp);
    EXPECT_TRUE(torch::isfinite(s.grad()).all().item<bool>()) << where(*tp);
    EXPECT_LE(rel_err(s.grad(), my_cols(s_full.grad(), *tp)), kTol) << where(*tp);
  }
}

// ---- no tokens ----

// A tp group with no tokens makes no collective while another tp group (another dp replica) with
// tokens makes its own; afterwards a world-wide sum still matches up, so nobody is left waiting.
TEST(VocabParallelZeroTokens, NoCollectivesAndZeroGradients) {
  for (const auto& tp : tp_groups()) {
    // With two tp groups, the second has tokens; with one, nobody does.
    const bool has_tokens = tp->size() < Runtime::get().world->size() && Runtime::get().world->rank() >= tp->size();
    const int64_t n = has_tokens ? 5 : 0;
    const CeCase c = ce_case(n, 41);
    auto h = c.hidden.clone().requires_grad_();
    auto w = my_rows(c.weight, *tp).clone().requires_grad_();
    auto ce = vocab_parallel_cross_entropy_sum(h, w, c.targets, shard_start(*tp), 2, tp);
    torch::manual_seed(42);
    auto s = torch::randn({n, shard_rows(*tp)}).requires_grad_();
    auto kl = vocab_parallel_kl_div_sum(s, torch::randn({n, shard_rows(*tp)}), 1.0, tp);
    auto emb = vocab_parallel_embedding(torch::randint(kVocab, {1, n}, torch::kLong), w, shard_start(*tp), tp);
    (ce + kl + emb.sum()).backward();
    if (n == 0) {
      EXPECT_EQ(ce.item<double>(), 0.0);
      EXPECT_EQ(kl.item<double>(), 0.0);
      EXPECT_EQ(emb.sizes().vec(), (std::vector<int64_t>{1, 0, kHidden}));
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

}  // namespace vocab_parallel_test
}  // namespace distillery::parallel
