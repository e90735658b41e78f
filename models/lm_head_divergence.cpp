// The generalized JSD (TRL's GKD loss) between the policy and a teacher, dense or top-k, through
// the chunked, vocab-sharded output projection (lm_head.h).
#include <cmath>
#include <limits>

#include "common/error.h"
#include "models/lm_head.h"
#include "models/lm_head_shard.h"
#include "parallel/vocab_parallel.h"

namespace distillery {
namespace lm_head_detail {
namespace {

void check_divergence(const GeneralizedJsd& d) {
  DIST_CHECK(d.beta >= 0 && d.beta <= 1, "the generalized JSD's beta must lie in [0, 1], got ", d.beta);
  DIST_CHECK(d.temperature > 0, "the distillation temperature must be > 0, got ", d.temperature);
}

// Per outcome (a vocabulary entry, or a top-k bucket) of one row, from the student's and the
// teacher's log-probabilities ls, lt [c, X] of the same outcomes (lm_head.h's GeneralizedJsd):
struct JsdTerms {
  torch::Tensor ps, pt;  // [c, X] the probabilities
  torch::Tensor loss;    // [c, X] the outcome's share of the divergence
  // [c, X] for beta > 0: A = d divergence / d ps (up to a constant per row, which cancels), so the
  // gradient with respect to the student's logits / T is ps (A - sum ps A). Undefined for beta = 0,
  // whose gradient is ps - pt.
  torch::Tensor coef;
};

// p (log p - log q) with 0 log 0 = 0 (an outcome of probability 0 adds nothing, whatever q is).
torch::Tensor kl_term(const torch::Tensor& p, const torch::Tensor& lp, const torch::Tensor& lq) {
  return torch::where(p.gt(0), p * (lp - lq), torch::zeros({}, p.options()));
}

JsdTerms jsd_terms(const torch::Tensor& ls, const torch::Tensor& lt, double beta) {
  JsdTerms t;
  t.ps = ls.exp();
  t.pt = lt.exp();
  if (beta == 0) {  // KL(p_t || p_s)
    t.loss = kl_term(t.pt, lt, ls);
  } else if (beta == 1) {  // KL(p_s || p_t)
    t.loss = kl_term(t.ps, ls, lt);
    t.coef = ls - lt;
  } else {  // beta KL(p_t || m) + (1 - beta) KL(p_s || m), m = (1 - beta) p_s + beta p_t
    auto lm = torch::logaddexp(ls + std::log1p(-beta), lt + std::log(beta));
    t.loss = kl_term(t.pt, lt, lm).mul_(beta).add_(kl_term(t.ps, ls, lm), 1 - beta);
    t.coef = (ls - lm).mul_(1 - beta);  // the derivatives through m cancel: (1-beta)(log ps - log m)
  }
  return t;
}

// sum over outcomes of ps * A, with 0 where ps = 0 (A may be infinite there).
torch::Tensor expected_coef(const JsdTerms& t) {
  return torch::where(t.ps.gt(0), t.ps * t.coef, torch::zeros({}, t.ps.options())).sum(1);
}

// ---- dense teacher ----

// The teacher's logits on this shard, chunk by chunk, in fp32 and without gradient.
class TeacherChunks {
 public:
  TeacherChunks(const DenseTeacher& t, int64_t n, const VocabShard& shard) {
    if (t.logits.defined()) {
      DIST_ASSERT(!t.hidden.defined() && t.logits.dim() == 2, "a DenseTeacher holds hidden states or logits");
      DIST_CHECK(t.logits.size(0) == n, "the teacher's logits cover ", t.logits.size(0), " positions, the student's ",
                 n);
      DIST_CHECK(t.logits.size(1) == shard.rows, "the teacher's vocabulary (", t.logits.size(1) * shard.size(),
                 ") differs from the student's (", shard.vocab(), ")");
      logits_ = t.logits.detach();
      return;
    }
    DIST_ASSERT(t.hidden.defined() && t.weight.defined() && t.hidden.dim() == 2 && t.weight.dim() == 2 &&
                    t.hidden.size(1) == t.weight.size(1),
                "teacher hidden ", t.hidden.sizes(), " weight ", t.weight.sizes());
    DIST_CHECK(t.hidden.size(0) == n, "the teacher's hidden states cover ", t.hidden.size(0),
               " positions, the student's ", n);
    const int64_t rows = t.weight.size(0);
    DIST_CHECK(rows == shard.rows || rows == shard.vocab(), "the teacher's vocabulary (",
               rows == shard.rows ? rows * shard.size() : rows, ") differs from the student's (", shard.vocab(), ")");
    hidden_ = t.hidden.detach();
    // A teacher held whole on every rank: this rank's rows.
    w32_ = (rows == shard.rows ? t.weight : t.weight.narrow(0, shard.start, shard.rows)).detach().to(torch::kFloat32);
  }
  // [len, V/tp] fp32 (a fresh tensor the caller may overwrite).
  torch::Tensor logits(int64_t start, int64_t len) const {
    if (logits_.defined()) return logits_.narrow(0, start, len).to(torch::kFloat32, /*non_blocking=*/false, /*copy=*/true);
    return chunk_logits(hidden_.narrow(0, start, len), w32_);
  }

 private:
  torch::Tensor logits_, hidden_, w32_;
};

// One chunk: zs, zt [c, V/tp] the student's and teacher's logits / T (overwritten). Returns the
// chunk's summed divergence; with `grad`, also d divergence / d zs into *grad [c, V/tp].
// Two allgathers: the per-rank log-sum-exps [c, 2], then the per-rank (divergence, sum ps A) [2, c].
torch::Tensor dense_chunk(torch::Tensor zs, torch::Tensor zt, double beta, const VocabShard& shard,
                          torch::Tensor* grad) {
  auto lse = torch::logsumexp(shard.gather(torch::stack({torch::logsumexp(zs, 1), torch::logsumexp(zt, 1)}, 1)),
                              0);                    // [c, 2] over the whole vocabulary
  auto ls = zs.sub_(lse.select(1, 0).unsqueeze(1));  // [c, V/tp] log p_s on this shard
  auto lt = zt.sub_(lse.select(1, 1).unsqueeze(1));  // [c, V/tp] log p_t
  JsdTerms t = jsd_terms(ls, lt, beta);
  auto e_mine = t.coef.defined() ? expected_coef(t) : torch::zeros({ls.size(0)}, ls.options());
  auto rows = shard.gather(torch::stack({t.loss.sum(1), e_mine})).sum(0);  // [2, c] summed over the vocabulary
  if (grad) {
    if (beta == 0) {
      *grad = t.ps.sub_(t.pt);
    } else {
      auto g = t.ps * (t.coef - rows[1].unsqueeze(1));
      *grad = torch::where(t.ps.gt(0), g, torch::zeros({}, g.options()));
    }
  }
  return rows[0].sum();
}

// ---- top-k teacher ----

// Checks ids and logprobs [N, K] (UserErrors, the same on every tp rank, before any collective).
void check_top_k(const TopKTeacher& t, int64_t n, const VocabShard& shard) {
  DIST_CHECK(t.ids.dim() == 2 && t.ids.size(0) == n && t.ids.size(1) >= 1, "the teacher's top-k ids have shape ",
             t.ids.sizes(), ", expected [", n, ", K] with K >= 1");
  DIST_CHECK(t.logprobs.sizes() == t.ids.sizes() && t.logprobs.is_floating_point(),
             "the teacher's top-k log-probs have shape ", t.logprobs.sizes(), " and dtype ", t.logprobs.scalar_type(),
             ", expected ", t.ids.sizes(), " floating point");
  parallel::check_vocab_ids(t.ids, shard.vocab(), "the teacher's top-k ids");
  if (n == 0) return;
  auto sorted = std::get<0>(t.ids.sort(1));
  auto repeats = sorted.narrow(1, 1, sorted.size(1) - 1).eq(sorted.narrow(1, 0, sorted.size(1) - 1)).sum();
  auto lp = t.logprobs.to(torch::kFloat32);
  const auto stats = torch::stack({repeats.to(torch::kFloat64), lp.max().to(torch::kFloat64),
                                   torch::logsumexp(lp, 1).max().to(torch::kFloat64)})
                         .cpu();
  DIST_CHECK(stats[0].item<double>() == 0, "the teacher's top-k ids repeat an id within a position");
  // Stored log-probs are rounded (bf16: 3 digits): allow 1e-2 of slack before calling them logits.
  DIST_CHECK(stats[1].item<double>() <= 1e-2 && stats[2].item<double>() <= std::log1p(1e-2),
             "the teacher's top-k log-probs must be log-probabilities (<= 0, their probabilities summing to at "
             "most 1), got a maximum of ",
             stats[1].item<double>(), " and a largest per-position sum of probabilities of ",
             std::exp(stats[2].item<double>()));
}

// The teacher's K + 1 bucket log-probs [N, K + 1] (the K ids, then the tail), tempered by T and
// renormalized: logprobs / T and log(1 - sum exp(logprobs)) / T, over their log-sum-exp.
torch::Tensor teacher_buckets(const torch::Tensor& logprobs, double temperature) {
  auto lq = logprobs.detach().to(torch::kFloat32);                        // [N, K]
  auto mass = torch::logsumexp(lq, 1, /*keepdim=*/true).clamp_max(0);    // [N, 1] log of the top-k mass
  auto b = torch::cat({lq, torch::log(torch::expm1(mass).neg_())}, 1);   // [N, K + 1]; an empty tail is -inf
  if (temperature != 1) b = b / temperature;
  return b - torch::logsumexp(b, 1, /*keepdim=*/true);
}

// One chunk: z [c, V/tp] the student's logits / T (overwritten), ids this chunk's top-k ids on this
// shard, lq [c, K + 1] the teacher's buckets. Returns the chunk's summed divergence; with `grad`, also
// d divergence / d z into *grad [c, V/tp]. One allgather of [c, K + 2] per rank: its log-sum-exp, its
// log-sum-exp off the top-k ids, and its logits at the ids it holds (0 at the others).
torch::Tensor top_k_chunk(torch::Tensor z, const ShardIds& ids, const torch::Tensor& lq, double beta,
                          const VocabShard& shard, torch::Tensor* grad) {
  const int64_t c = z.size(0), k = ids.local.size(1);
  // This shard's top-k columns, through a spare column for the ids other ranks hold.
  auto spare = torch::full_like(ids.local, shard.rows);
  auto in_top_k = torch::zeros({c, shard.rows + 1}, ids.owned.options())
                      .scatter_(1, torch::where(ids.owned, ids.local, spare), true)
                      .narrow(1, 0, shard.rows);  // [c, V/tp]
  auto z_ids = z.gather(1, ids.local).masked_fill(ids.owned.logical_not(), 0);  // [c, K]
  auto tail = torch::logsumexp(z.masked_fill(in_top_k, -std::numeric_limits<float>::infinity()), 1);
  auto all = shard.gather(torch::cat({torch::logsumexp(z, 1).unsqueeze(1), tail.unsqueeze(1), z_ids}, 1));  // [tp, c, K+2]
  auto lse = torch::logsumexp(all.select(2, 0), 0).unsqueeze(1);                                             // [c, 1]
  auto ls = torch::cat({all.narrow(2, 2, k).sum(0) - lse,  // the K ids: exactly one rank held each
                        torch::logsumexp(all.select(2, 1), 0).unsqueeze(1) - lse},
                       1);  // [c, K + 1] the student's bucket log-probs
  // A student with no token off the K ids (K = V) has no tail: the teacher's (rounding, then) is
  // dropped and its K ids renormalized.
  const auto lq_ids = lq.narrow(1, 0, k);
  const auto no_tail = ls.narrow(1, k, 1).isneginf();  // [c, 1]
  const auto lq_without_tail = torch::cat({lq_ids - torch::logsumexp(lq_ids, 1, /*keepdim=*/true),
                                           torch::full_like(lq.narrow(1, k, 1), -std::numeric_limits<float>::infinity())},
                                          1);
  const auto lt = torch::where(no_tail, lq_without_tail, lq);  // [c, K + 1] the teacher's buckets
  JsdTerms t = jsd_terms(ls, lt, beta);
  if (grad) {
    // d/dz_v = p_v (A_b(v) - E) for v in bucket b (the same A for every tail entry); beta = 0:
    // p_v - pt_b p_v / ps_b, which is p_v - pt_v on the K ids.
    const auto zero = torch::zeros({}, ls.options());
    torch::Tensor g_ids, g_tail;  // [c, K] the gradient at the ids; [c, 1] the tail's per unit of p_v
    if (beta == 0) {
      g_ids = t.ps.narrow(1, 0, k) - t.pt.narrow(1, 0, k);
      g_tail = 1 - (lt.narrow(1, k, 1) - ls.narrow(1, k, 1)).exp();  // NaN where both are empty: masked below
    } else {
      auto centred = t.coef - expected_coef(t).unsqueeze(1);  // [c, K + 1] A_b - E
      g_ids = torch::where(t.ps.narrow(1, 0, k).gt(0), t.ps.narrow(1, 0, k) * centred.narrow(1, 0, k), zero);
      g_tail = centred.narrow(1, k, 1);
    }
    // An empty tail (probability 0) has no entry to take a gradient (and its A may be infinite).
    g_tail = torch::where(t.ps.narrow(1, k, 1).gt(0), g_tail, zero);
    auto p = z.sub_(lse).exp_();  // [c, V/tp]
    // Every column as a tail entry, then the ids this shard holds corrected to their own gradient.
    auto fix = (g_ids - t.ps.narrow(1, 0, k) * g_tail).masked_fill(ids.owned.logical_not(), 0);
    *grad = p.mul_(g_tail).scatter_add_(1, ids.local, fix);
  }
  return t.loss.sum();
}

}  // namespace
}  // namespace lm_head_detail

namespace lhd = lm_head_detail;

torch::Tensor fused_linear_generalized_jsd_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                               const DenseTeacher& teacher, GeneralizedJsd divergence,
                                               int64_t chunk_tokens, const TpGroup& tp) {
  lhd::check_student(hidden, weight, chunk_tokens);
  lhd::check_divergence(divergence);
  const lhd::VocabShard shard = lhd::VocabShard::of(weight, tp.get());
  const lhd::TeacherChunks teacher_logits(teacher, hidden.size(0), shard);
  // The tp ranks share N: with no tokens none of them makes a collective.
  if (hidden.size(0) == 0) return lhd::empty_result(hidden, weight, /*per_token=*/false);
  lhd::PrecomputedGrads grads(hidden, weight, shard);
  auto total = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
  {
    torch::NoGradGuard no_grad;
    const double T = divergence.temperature;
    const auto w32 = weight.to(torch::kFloat32);
    lhd::for_each_chunk(hidden.size(0), chunk_tokens, [&](int64_t s, int64_t len) {
      auto h = hidden.narrow(0, s, len).to(torch::kFloat32);  // [c, H]
      auto zs = torch::matmul(h, w32.t()).div_(T);             // [c, V/tp]
      torch::Tensor g;
      total += lhd::dense_chunk(zs, teacher_logits.logits(s, len).div_(T), divergence.beta, shard,
                                grads.wanted() ? &g : nullptr);
      if (grads.wanted()) grads.add(s, g.div_(T), h, w32);  // logits / T
    });
  }
  return lhd::with_precomputed_grads(hidden, weight, total, grads.finish(hidden, weight, shard));
}

torch::Tensor fused_linear_generalized_jsd_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                               const TopKTeacher& teacher, GeneralizedJsd divergence,
                                               int64_t chunk_tokens, const TpGroup& tp) {
  lhd::check_student(hidden, weight, chunk_tokens);
  lhd::check_divergence(divergence);
  const lhd::VocabShard shard = lhd::VocabShard::of(weight, tp.get());
  lhd::check_top_k(teacher, hidden.size(0), shard);
  if (hidden.size(0) == 0) return lhd::empty_result(hidden, weight, /*per_token=*/false);
  lhd::PrecomputedGrads grads(hidden, weight, shard);
  auto total = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
  {
    torch::NoGradGuard no_grad;
    const double T = divergence.temperature;
    const auto w32 = weight.to(torch::kFloat32);
    const auto lq = lhd::teacher_buckets(teacher.logprobs, T);  // [N, K + 1]
    const lhd::ShardIds ids = lhd::shard_ids(teacher.ids, shard);
    lhd::for_each_chunk(hidden.size(0), chunk_tokens, [&](int64_t s, int64_t len) {
      auto h = hidden.narrow(0, s, len).to(torch::kFloat32);  // [c, H]
      auto z = torch::matmul(h, w32.t()).div_(T);              // [c, V/tp]
      torch::Tensor g;
      total += lhd::top_k_chunk(z, ids.narrow(s, len), lq.narrow(0, s, len), divergence.beta, shard,
                                grads.wanted() ? &g : nullptr);
      if (grads.wanted()) grads.add(s, g.div_(T), h, w32);  // logits / T
    });
  }
  return lhd::with_precomputed_grads(hidden, weight, total, grads.finish(hidden, weight, shard));
}

}  // namespace distillery
