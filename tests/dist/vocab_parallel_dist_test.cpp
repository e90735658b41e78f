// The vocab-parallel building blocks against the same computation on the full vocabulary in one
// process: every rank draws the same full tensors (fixed seed), keeps its shard, and must get the
// full result. Run on the whole world as the tp group, and with 4 ranks also on the tp=2 groups of
// a dp=2 x tp=2 mesh. The LM-head ops built on them are tested in lm_head_dist_test.cpp.
#include <gtest/gtest.h>

#include "dist_util.h"
#include "parallel/vocab_parallel.h"
#include "common/error.h"

namespace distillery::parallel {
namespace vocab_parallel_test {

using dist_testing::rel_err;
using dist_testing::same_on_every_rank;
using dist_testing::tp_groups;
using dist_testing::where;

constexpr int64_t kVocab = 64;  // divisible by 1, 2 and 4
constexpr int64_t kHidden = 16;
constexpr double kTol = 1e-5;

int64_t shard_rows(const Communicator& tp) { return kVocab / tp.size(); }
int64_t shard_start(const Communicator& tp) { return tp.rank() * shard_rows(tp); }
torch::Tensor my_rows(const torch::Tensor& full, const Communicator& tp) {
  return full.narrow(0, shard_start(tp), shard_rows(tp));
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

// A tp group with no tokens makes no collective while another tp group (another dp replica) with
// tokens makes its own; afterwards a world-wide sum still matches up, so nobody is left waiting.
TEST(VocabParallelZeroTokens, NoCollectives) {
  for (const auto& tp : tp_groups()) {
    // With two tp groups, the second has tokens; with one, nobody does.
    const bool has_tokens = tp->size() < Runtime::get().world->size() && Runtime::get().world->rank() >= tp->size();
    const int64_t n = has_tokens ? 5 : 0;
    auto w = torch::randn({shard_rows(*tp), kHidden}).requires_grad_();
    auto emb = vocab_parallel_embedding(torch::randint(kVocab, {1, n}, torch::kLong), w, shard_start(*tp), tp);
    auto logits = gather_vocab_columns(torch::randn({n, shard_rows(*tp)}), tp);
    emb.sum().backward();
    EXPECT_EQ(emb.sizes().vec(), (std::vector<int64_t>{1, n, kHidden}));
    EXPECT_EQ(logits.sizes().vec(), (std::vector<int64_t>{n, kVocab}));
    torch::Tensor probe = torch::ones({1}, torch::kLong);
    Runtime::get().world->allreduce(probe);
    EXPECT_EQ(probe.item<int64_t>(), Runtime::get().world->size()) << where(*tp);
  }
}

}  // namespace vocab_parallel_test
}  // namespace distillery::parallel
