#include "parallel/vocab_parallel.h"

#include "parallel/tp_ops.h"
#include "common/error.h"
#include "common/ignore_index.h"

namespace distillery::parallel {
namespace vocab_parallel_detail {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

int group_size(const std::shared_ptr<Communicator>& tp) { return tp ? tp->size() : 1; }

// The communicator travels through autograd as an int64 (see tp_ops.cpp): the caller's
// shared_ptr outlives every graph built from it.
int64_t comm_handle(const std::shared_ptr<Communicator>& tp) { return reinterpret_cast<int64_t>(tp.get()); }
Communicator& comm_of(int64_t handle) { return *reinterpret_cast<Communicator*>(handle); }

// The shard layout is fixed (rank r holds rows [r*V/tp, (r+1)*V/tp)); anything else is a caller bug
// that would silently attribute targets to the wrong rank.
void check_shard(const torch::Tensor& weight_shard, int64_t vocab_start, const std::shared_ptr<Communicator>& tp) {
  const int rank = tp ? tp->rank() : 0;
  DIST_ASSERT(weight_shard.dim() == 2 && vocab_start == rank * weight_shard.size(0), "vocab_start ", vocab_start,
              " for tp rank ", rank, " of a [", weight_shard.size(0), ", ...] shard");
}

// Ids and targets are the same on every tp rank, so this check throws on all of them or none,
// before any collective. One host sync.
void check_ids(const torch::Tensor& ids, int64_t vocab, const char* what) {
  DIST_ASSERT(ids.scalar_type() == torch::kLong, what, " must be int64");
  if (ids.numel() == 0) return;
  const auto range = torch::stack({ids.min(), ids.max()}).cpu();
  const int64_t lo = range[0].item<int64_t>(), hi = range[1].item<int64_t>();
  DIST_CHECK(lo >= 0 && hi < vocab, what, " must lie in [0, ", vocab, ") (the model's vocabulary), got values in [",
             lo, ", ", hi, "]");
}

// Every rank's per-token statistics mine [k, c] -> [tp, k, c] on every rank, in rank order. What
// each rank then computes from it is computed from the same numbers everywhere, so the results
// are bitwise identical across the group.
torch::Tensor gather_stats(const torch::Tensor& mine, Communicator& tp) {
  return tp.allgather(mine.contiguous()).view({tp.size(), mine.size(0), mine.size(1)});
}

// ---- cross-entropy ----

struct ShardChunk {
  torch::Tensor logits;  // [c, V/tp] fp32
  torch::Tensor lse;     // [c] log-sum-exp over the full vocabulary
  torch::Tensor loss;    // 0-dim: sum of the chunk's token losses
};

// h32 [c, H] fp32, w32 [V/tp, H] fp32, local [c] = target - vocab_start, owned [c] = target in this shard.
ShardChunk shard_chunk(const torch::Tensor& h32, const torch::Tensor& w32, const torch::Tensor& local,
                       const torch::Tensor& owned, Communicator& tp) {
  ShardChunk c;
  c.logits = torch::matmul(h32, w32.t());                                                     // [c, V/tp]
  auto target = c.logits.gather(1, local.unsqueeze(1)).squeeze(1).masked_fill(owned.logical_not(), 0);  // [c]
  auto all = gather_stats(torch::stack({torch::logsumexp(c.logits, -1), target}), tp);       // [tp, 2, c]
  c.lse = torch::logsumexp(all.select(1, 0), 0);                                              // [c]
  // Exactly one rank owns each target; the others added 0.
  c.loss = (c.lse - all.select(1, 1).sum(0)).sum();
  return c;
}

struct ShardTargets {
  torch::Tensor local;  // [n] target - vocab_start where owned, else 0 (any valid column)
  torch::Tensor owned;  // [n] bool
};

ShardTargets shard_targets(const torch::Tensor& targets, int64_t vocab_start, int64_t rows) {
  auto local = targets - vocab_start;
  auto owned = local.ge(0).logical_and(local.lt(rows));
  return {local.masked_fill(owned.logical_not(), 0), owned};
}

class VocabParallelCrossEntropy : public torch::autograd::Function<VocabParallelCrossEntropy> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, int64_t vocab_start, int64_t chunk, int64_t comm) {
    Communicator& tp = comm_of(comm);
    const bool grad_h = hidden.requires_grad(), grad_w = weight.requires_grad();
    const int64_t n = hidden.size(0);
    const auto w32 = weight.to(torch::kFloat32);
    const ShardTargets st = shard_targets(targets, vocab_start, weight.size(0));
    auto total = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
    // Each rank's partial hidden gradient is kept in fp32 and summed over tp once, after the loop.
    torch::Tensor dh32, dw;
    if (grad_h) dh32 = torch::empty({n, hidden.size(1)}, hidden.options().dtype(torch::kFloat32));
    if (grad_w) dw = torch::zeros_like(w32);
    for (int64_t s = 0; s < n; s += chunk) {
      const int64_t len = std::min(chunk, n - s);
      auto h = hidden.narrow(0, s, len).to(torch::kFloat32);  // [c, H]
      auto local = st.local.narrow(0, s, len), owned = st.owned.narrow(0, s, len);
      ShardChunk c = shard_chunk(h, w32, local, owned, tp);
      total += c.loss;
      // d(sum CE)/d logits on this shard's columns = softmax - onehot(target) where owned.
      auto g = c.logits.sub_(c.lse.unsqueeze(1)).exp_();  // [c, V/tp]
      g.scatter_add_(1, local.unsqueeze(1), owned.to(torch::kFloat32).neg().unsqueeze(1));
      if (grad_h) dh32.narrow(0, s, len).copy_(torch::matmul(g, w32));
      if (grad_w) dw.addmm_(g.t(), h);
    }
    torch::Tensor dh;
    if (grad_h) {
      tp.allreduce(dh32);
      dh = dh32.to(hidden.scalar_type());
    }
    ctx->save_for_backward({dh, grad_w ? dw.to(weight.scalar_type()) : torch::Tensor()});
    return total;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto grads = scale_precomputed_grads(ctx->get_saved_variables(), grad_out[0]);
    return {grads[0], grads[1], torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// ---- KL divergence ----

// Log-probabilities of both distributions on this shard, fp32: logits / T - global log-sum-exp.
struct ShardLogProbs {
  torch::Tensor student, teacher;  // [N, V/tp]
  torch::Tensor lse;               // [2, N]: global log-sum-exp of student / T, teacher / T
};

ShardLogProbs shard_log_probs(const torch::Tensor& student, const torch::Tensor& teacher, double temperature,
                              Communicator* tp) {
  ShardLogProbs lp;
  auto s = student.to(torch::kFloat32) / temperature;  // [N, V/tp]
  auto t = teacher.to(torch::kFloat32) / temperature;
  lp.lse = torch::stack({torch::logsumexp(s, -1), torch::logsumexp(t, -1)});  // [2, N] this shard
  if (tp) lp.lse = torch::logsumexp(gather_stats(lp.lse, *tp), 0);              // [2, N] full vocab
  lp.student = s.sub_(lp.lse[0].unsqueeze(1));
  lp.teacher = t.sub_(lp.lse[1].unsqueeze(1));
  return lp;
}

// Sum over tokens of KL(p_teacher || p_student), summed over the tp group.
torch::Tensor kl_sum(const ShardLogProbs& lp, Communicator* tp) {
  auto p_t = lp.teacher.exp();
  // 0 * log 0 = 0: a teacher entry of probability 0 adds nothing whatever the student says there.
  auto terms = torch::where(p_t.gt(0), p_t * (lp.teacher - lp.student), torch::zeros({}, p_t.options()));
  auto total = terms.sum();
  if (tp) tp->allreduce(total);
  return total;
}

class VocabParallelKlDiv : public torch::autograd::Function<VocabParallelKlDiv> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& student, const torch::Tensor& teacher,
                               double temperature, int64_t comm) {
    auto* tp = reinterpret_cast<Communicator*>(comm);
    ShardLogProbs lp = shard_log_probs(student, teacher, temperature, tp);
    // Backward recomputes the probabilities from the inputs and lse, so no [N, V/tp] fp32 tensor
    // lives from forward to backward.
    ctx->save_for_backward({student, teacher, lp.lse});
    ctx->saved_data["temperature"] = temperature;
    return kl_sum(lp, tp);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor &student = saved[0], &teacher = saved[1], &lse = saved[2];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    // d KL / d student = (p_student - p_teacher) / T.
    auto p_s = (student.to(torch::kFloat32) / temperature).sub_(lse[0].unsqueeze(1)).exp_();
    auto p_t = (teacher.to(torch::kFloat32) / temperature).sub_(lse[1].unsqueeze(1)).exp_();
    auto ds = p_s.sub_(p_t).mul_(grad_out[0].to(torch::kFloat32) / temperature);
    return {ds.to(student.scalar_type()), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace vocab_parallel_detail

namespace vpd = vocab_parallel_detail;

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
  const int size = vpd::group_size(tp);
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
  vpd::check_shard(weight_shard, vocab_start, tp);
  const int64_t rows = weight_shard.size(0);
  vpd::check_ids(ids, rows * vpd::group_size(tp), "token ids");
  if (vpd::group_size(tp) == 1) return torch::embedding(weight_shard, ids);
  // Same ids on every tp rank: all of them skip the collective together.
  if (ids.numel() == 0) return torch::embedding(weight_shard, ids);
  auto local = ids - vocab_start;
  auto outside = local.lt(0).logical_or(local.ge(rows));
  // Ids held elsewhere look up row 0 and are zeroed, which also zeroes their gradient into row 0.
  auto mine = torch::embedding(weight_shard, local.masked_fill(outside, 0)).masked_fill(outside.unsqueeze(-1), 0);
  return reduce_from_tp(mine, tp);  // [..., H]
}

torch::Tensor vocab_parallel_cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& weight_shard,
                                               const torch::Tensor& targets, int64_t vocab_start,
                                               int64_t chunk_tokens, const std::shared_ptr<Communicator>& tp) {
  DIST_ASSERT(hidden.dim() == 2 && weight_shard.dim() == 2 && targets.dim() == 1 &&
              hidden.size(0) == targets.size(0) && hidden.size(1) == weight_shard.size(1) && chunk_tokens > 0);
  vpd::check_shard(weight_shard, vocab_start, tp);
  vpd::check_ids(targets, weight_shard.size(0) * vpd::group_size(tp), "targets");
  DIST_ASSERT(tp, "vocab_parallel_cross_entropy_sum needs a tp communicator (models/lm_head.h is the tp=1 path)");
  // The tp ranks share N: with no tokens none of them makes a collective.
  if (hidden.size(0) == 0) return (hidden.sum() * 0 + weight_shard.sum() * 0).to(torch::kFloat32);
  const bool needs_grad = torch::GradMode::is_enabled() && (hidden.requires_grad() || weight_shard.requires_grad());
  if (needs_grad)
    return vpd::VocabParallelCrossEntropy::apply(hidden, weight_shard, targets, vocab_start, chunk_tokens,
                                                 vpd::comm_handle(tp));
  const auto w32 = weight_shard.to(torch::kFloat32);
  const vpd::ShardTargets st = vpd::shard_targets(targets, vocab_start, weight_shard.size(0));
  torch::Tensor total = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
  for (int64_t s = 0; s < hidden.size(0); s += chunk_tokens) {
    const int64_t len = std::min(chunk_tokens, hidden.size(0) - s);
    total += vpd::shard_chunk(hidden.narrow(0, s, len).to(torch::kFloat32), w32, st.local.narrow(0, s, len),
                              st.owned.narrow(0, s, len), *tp)
                 .loss;
  }
  return total;
}

torch::Tensor vocab_parallel_kl_div_sum(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                        double temperature, const std::shared_ptr<Communicator>& tp) {
  DIST_ASSERT(student_logits.dim() == 2 && student_logits.sizes() == teacher_logits.sizes(), "student ",
              student_logits.sizes(), " teacher ", teacher_logits.sizes());
  DIST_CHECK(temperature > 0, "distillation temperature must be > 0, got ", temperature);
  // The tp ranks share N: with no tokens none of them makes a collective.
  if (student_logits.size(0) == 0) return (student_logits.sum() * 0).to(torch::kFloat32);
  Communicator* comm = vpd::group_size(tp) > 1 ? tp.get() : nullptr;
  if (torch::GradMode::is_enabled() && student_logits.requires_grad())
    return vpd::VocabParallelKlDiv::apply(student_logits, teacher_logits, temperature,
                                          reinterpret_cast<int64_t>(comm));
  return vpd::kl_sum(vpd::shard_log_probs(student_logits, teacher_logits, temperature, comm), comm);
}

}  // namespace distillery::parallel
