#include "parallel/vocab_parallel.h"

#include "parallel/tp_ops.h"
#include "common/error.h"
#include "common/ignore_index.h"

namespace distillery::parallel {
namespace {

int group_size(const std::shared_ptr<Communicator>& tp) { return tp ? tp->size() : 1; }

// The shard layout is fixed (rank r holds rows [r*V/tp, (r+1)*V/tp)); anything else is a caller bug
// that would silently attribute ids to the wrong rank.
void check_shard(const torch::Tensor& weight_shard, int64_t vocab_start, const std::shared_ptr<Communicator>& tp) {
  const int rank = tp ? tp->rank() : 0;
  DIST_ASSERT(weight_shard.dim() == 2 && vocab_start == rank * weight_shard.size(0), "vocab_start ", vocab_start,
              " for tp rank ", rank, " of a [", weight_shard.size(0), ", ...] shard");
}

}  // namespace

bool check_vocab_ids(const torch::Tensor& ids, int64_t vocab, const char* what, bool allow_ignore) {
  DIST_ASSERT(ids.scalar_type() == torch::kLong, what, " must be int64");
  if (ids.numel() == 0) return false;
  const auto ignored = allow_ignore ? ids.eq(kIgnoreIndex) : torch::zeros_like(ids, torch::kBool);
  // Ignored ids count as 0 in the range; a tensor of only ignored ids then reads [0, 0].
  const auto checked = ids.masked_fill(ignored, 0);
  const auto stats = torch::stack({checked.min(), checked.max(), ignored.sum()}).cpu();
  const int64_t lo = stats[0].item<int64_t>(), hi = stats[1].item<int64_t>();
  DIST_CHECK(lo >= 0 && hi < vocab, what, " must lie in [0, ", vocab, ") (the model's vocabulary)",
             allow_ignore ? " or be -100 (ignored)" : "", ", got values in [", lo, ", ", hi, "]");
  return stats[2].item<int64_t>() > 0;
}

torch::Tensor gather_shard_stats(const torch::Tensor& mine, Communicator* tp) {
  if (!tp || tp->size() == 1) return mine.unsqueeze(0);
  auto shape = mine.sizes().vec();
  shape.insert(shape.begin(), tp->size());
  return tp->allgather(mine.contiguous().reshape({1, -1})).view(shape);
}

void sum_shard_partials_(torch::Tensor& t, Communicator* tp) {
  if (!tp || tp->size() == 1) return;
  DIST_ASSERT(t.is_contiguous());
  tp->allreduce(t);
}

torch::Tensor gather_vocab_columns(const torch::Tensor& local, const std::shared_ptr<Communicator>& tp) {
  const int size = group_size(tp);
  auto sizes = local.sizes().vec();
  sizes.back() *= size;
  if (size == 1) return local;
  if (local.numel() == 0) return torch::zeros(sizes, local.options());
  // allgather concatenates dim 0: move the vocabulary there and back.
  auto rows = local.detach().reshape({-1, local.size(-1)}).t().contiguous();  // [V/tp, N]
  return tp->allgather(rows).t().reshape(sizes);                              // [..., V]
}

torch::Tensor vocab_parallel_embedding(const torch::Tensor& ids, const torch::Tensor& weight_shard,
                                       int64_t vocab_start, const std::shared_ptr<Communicator>& tp) {
  check_shard(weight_shard, vocab_start, tp);
  const int64_t rows = weight_shard.size(0);
  check_vocab_ids(ids, rows * group_size(tp), "token ids");
  if (group_size(tp) == 1) return torch::embedding(weight_shard, ids);
  // Same ids on every tp rank: all of them skip the collective together.
  if (ids.numel() == 0) return torch::embedding(weight_shard, ids);
  auto local = ids - vocab_start;
  auto outside = local.lt(0).logical_or(local.ge(rows));
  // Ids held elsewhere look up row 0 and are zeroed, which also zeroes their gradient into row 0.
  auto mine = torch::embedding(weight_shard, local.masked_fill(outside, 0)).masked_fill(outside.unsqueeze(-1), 0);
  return reduce_from_tp(mine, tp);  // [..., H]
}

}  // namespace distillery::parallel
