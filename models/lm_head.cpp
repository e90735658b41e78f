// Cross-entropy, token log-probs and entropy through the chunked, vocab-sharded output projection.
#include "models/lm_head.h"

#include "common/error.h"
#include "models/lm_head_shard.h"
#include "parallel/vocab_parallel.h"

namespace distillery {
namespace lm_head_detail {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ---- cross-entropy ----

struct CeChunk {
  torch::Tensor logits;  // [c, V/tp] fp32
  torch::Tensor lse;     // [c] log-sum-exp over the whole vocabulary
  torch::Tensor loss;    // 0-dim: sum of the chunk's token losses
};

// h32 [c, H] and w32 [V/tp, H] fp32; t: the chunk's targets on this shard; ignored [c] bool, or
// undefined when no target is ignored. One allgather of each rank's (log-sum-exp, target logit).
CeChunk ce_chunk(const torch::Tensor& h32, const torch::Tensor& w32, const ShardIds& t, const torch::Tensor& ignored,
                 const VocabShard& shard) {
  CeChunk c;
  c.logits = torch::matmul(h32, w32.t());                                                        // [c, V/tp]
  auto lse = torch::logsumexp(c.logits, -1);                                                      // [c]
  auto target = c.logits.gather(1, t.local.unsqueeze(1)).squeeze(1).masked_fill(t.owned.logical_not(), 0);  // [c]
  if (shard.tp) {
    auto all = shard.gather(torch::stack({lse, target}));  // [tp, 2, c]
    lse = torch::logsumexp(all.select(1, 0), 0);           // [c] over the whole vocabulary
    target = all.select(1, 1).sum(0);                      // exactly one rank owns each target; the others added 0
  }
  c.lse = lse;
  auto losses = lse - target;  // [c]
  if (ignored.defined()) losses = losses.masked_fill(ignored, 0);
  c.loss = losses.sum();
  return c;
}

// ---- per-token log-probs and entropy ----

enum class TokenStat : int64_t { kLogProb, kEntropy };

struct TokenStats {
  torch::Tensor lse;    // [N] log-sum-exp over the whole vocabulary
  torch::Tensor value;  // [N] log p(target) (0 where ignored) or the entropy
};

// logits [c, V/tp] fp32 of rows [start, start + c): writes their lse and value into `out`.
// One allgather of each rank's (log-sum-exp, target logit or own entropy).
void token_stat_chunk(const torch::Tensor& logits, TokenStat stat, const ShardIds& t, const VocabShard& shard,
                      int64_t start, TokenStats& out) {
  auto lse = torch::logsumexp(logits, -1);  // [c] this shard
  torch::Tensor mine;                       // [c]
  if (stat == TokenStat::kLogProb) {
    mine = logits.gather(1, t.local.unsqueeze(1)).squeeze(1).masked_fill(t.owned.logical_not(), 0);
  } else {
    // The entropy of softmax over this shard's columns alone: sum p (lse - logit), 0 log 0 = 0.
    auto p = (logits - lse.unsqueeze(1)).exp();
    mine = torch::where(p.gt(0), p * (lse.unsqueeze(1) - logits), torch::zeros({}, p.options())).sum(1);
  }
  auto all = shard.gather(torch::stack({lse, mine}));  // [tp, 2, c]
  auto lse_r = all.select(1, 0), mine_r = all.select(1, 1);
  auto whole = torch::logsumexp(lse_r, 0);  // [c]
  torch::Tensor value;
  if (stat == TokenStat::kLogProb) {
    value = mine_r.sum(0) - whole;
  } else {
    // -log p_v = (lse - lse_r) + (lse_r - logit_v) for v in shard r, and shard r holds the share
    // w_r = exp(lse_r - lse) of the mass: H = sum_r w_r (H_r + lse - lse_r), without cancellation.
    auto w = (lse_r - whole).exp();
    value = torch::where(w.gt(0), w * (mine_r + (whole - lse_r)), torch::zeros({}, w.options())).sum(0);
  }
  out.lse.narrow(0, start, logits.size(0)).copy_(whole);
  out.value.narrow(0, start, logits.size(0)).copy_(value);
}

// targets [N] (kLogProb) or undefined (kEntropy); ignored [N] or undefined.
TokenStats token_stats(const torch::Tensor& hidden, const torch::Tensor& w32, const torch::Tensor& targets,
                       const torch::Tensor& ignored, TokenStat stat, int64_t chunk, const VocabShard& shard) {
  const int64_t n = hidden.size(0);
  const auto opts = hidden.options().dtype(torch::kFloat32);
  TokenStats out{torch::empty({n}, opts), torch::empty({n}, opts)};
  const ShardIds st = targets.defined() ? shard_ids(targets, shard) : ShardIds{};
  for_each_chunk(n, chunk, [&](int64_t s, int64_t len) {
    auto logits = chunk_logits(hidden.narrow(0, s, len), w32);  // [c, V/tp]
    token_stat_chunk(logits, stat, targets.defined() ? st.narrow(s, len) : ShardIds{}, shard, s, out);
  });
  if (ignored.defined()) out.value.masked_fill_(ignored, 0);
  return out;
}

// The targets of kLogProb and which of them are ignored (each undefined when unused), as one
// non-tensor argument of TokenStatFunction: autograd's apply() takes every tensor argument for an
// input, and an undefined one has no device to record.
struct Labels {
  torch::Tensor targets, ignored;
};

// Per-token values with a backward that recomputes each chunk's logits from the saved lse:
//   d log p(t) / d logit_v = onehot(t)_v - p_v        d H / d logit_v = -p_v (log p_v + H)
class TokenStatFunction : public torch::autograd::Function<TokenStatFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const Labels& labels, int64_t chunk, int64_t comm, int64_t stat) {
    const VocabShard shard = VocabShard::of(weight, comm_of(comm));
    TokenStats s = token_stats(hidden, weight.to(torch::kFloat32), labels.targets, labels.ignored,
                               static_cast<TokenStat>(stat), chunk, shard);
    ctx->save_for_backward({hidden, weight, labels.targets, labels.ignored, s.lse, s.value});
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["comm"] = comm;
    ctx->saved_data["stat"] = stat;
    return s.value;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &hidden = saved[0], &weight = saved[1], &targets = saved[2], &ignored = saved[3];
    const torch::Tensor &lse = saved[4], &value = saved[5];
    const auto stat = static_cast<TokenStat>(ctx->saved_data["stat"].toInt());
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const VocabShard shard = VocabShard::of(weight, comm_of(ctx->saved_data["comm"].toInt()));
    auto go = grad_out[0].to(torch::kFloat32);  // [N], the same on every tp rank
    if (ignored.defined()) go = go.masked_fill(ignored, 0);
    const auto w32 = weight.to(torch::kFloat32);
    const ShardIds st = targets.defined() ? shard_ids(targets, shard) : ShardIds{};
    PrecomputedGrads grads(hidden, weight, shard, ctx->needs_input_grad(0), ctx->needs_input_grad(1));
    for_each_chunk(hidden.size(0), chunk, [&](int64_t s, int64_t len) {
      auto h32 = hidden.narrow(0, s, len).to(torch::kFloat32);
      auto logits = torch::matmul(h32, w32.t());  // [c, V/tp]
      auto l = lse.narrow(0, s, len).unsqueeze(1), g_out = go.narrow(0, s, len).unsqueeze(1);
      auto g = (logits - l).exp_();  // p
      if (stat == TokenStat::kLogProb) {
        const ShardIds t = st.narrow(s, len);
        g.mul_(g_out.neg());
        g.scatter_add_(1, t.local.unsqueeze(1), g_out.masked_fill(t.owned.logical_not().unsqueeze(1), 0));
      } else {
        // -p (log p + H) = p (lse - logit - H)
        g.mul_(logits.neg_().add_(l - value.narrow(0, s, len).unsqueeze(1))).mul_(g_out);
      }
      grads.add(s, g, h32, w32);
    });
    auto d = grads.finish(hidden, weight, shard);
    return {d[0], d[1], torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor token_stat(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                         TokenStat stat, int64_t chunk_tokens, const TpGroup& tp) {
  check_student(hidden, weight, chunk_tokens);
  const VocabShard shard = VocabShard::of(weight, tp.get());
  torch::Tensor ignored;
  if (targets.defined()) {
    DIST_ASSERT(targets.dim() == 1 && targets.size(0) == hidden.size(0), "targets ", targets.sizes(), " hidden ",
                hidden.sizes());
    if (parallel::check_vocab_ids(targets, shard.vocab(), "targets", /*allow_ignore=*/true))
      ignored = targets.eq(kIgnoreIndex);
  }
  // The tp ranks share N: with no tokens none of them makes a collective.
  if (hidden.size(0) == 0) return empty_result(hidden, weight, /*per_token=*/true);
  if (wants_grad(hidden, weight))
    return TokenStatFunction::apply(hidden, weight, Labels{targets, ignored}, chunk_tokens, comm_handle(tp),
                                    static_cast<int64_t>(stat));
  return token_stats(hidden, weight.to(torch::kFloat32), targets, ignored, stat, chunk_tokens, shard).value;
}

}  // namespace
}  // namespace lm_head_detail

namespace lhd = lm_head_detail;

torch::Tensor fused_linear_cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                             const torch::Tensor& targets, int64_t chunk_tokens, const TpGroup& tp) {
  lhd::check_student(hidden, weight, chunk_tokens);
  DIST_ASSERT(targets.dim() == 1 && targets.size(0) == hidden.size(0), "targets ", targets.sizes(), " hidden ",
              hidden.sizes());
  const lhd::VocabShard shard = lhd::VocabShard::of(weight, tp.get());
  const bool any_ignored = parallel::check_vocab_ids(targets, shard.vocab(), "targets", /*allow_ignore=*/true);
  // The tp ranks share N: with no tokens none of them makes a collective.
  if (hidden.size(0) == 0) return lhd::empty_result(hidden, weight, /*per_token=*/false);
  lhd::PrecomputedGrads grads(hidden, weight, shard);
  auto total = torch::zeros({}, hidden.options().dtype(torch::kFloat32));
  {
    torch::NoGradGuard no_grad;
    const auto w32 = weight.to(torch::kFloat32);
    const lhd::ShardIds st = lhd::shard_ids(targets, shard);
    const auto ignored = any_ignored ? targets.eq(kIgnoreIndex) : torch::Tensor();
    lhd::for_each_chunk(hidden.size(0), chunk_tokens, [&](int64_t s, int64_t len) {
      auto h = hidden.narrow(0, s, len).to(torch::kFloat32);  // [c, H]
      const lhd::ShardIds t = st.narrow(s, len);
      const auto ig = ignored.defined() ? ignored.narrow(0, s, len) : torch::Tensor();
      lhd::CeChunk c = lhd::ce_chunk(h, w32, t, ig, shard);
      total += c.loss;
      if (!grads.wanted()) return;
      // d(sum CE)/d logits = softmax - onehot(target), on this shard's columns.
      auto g = c.logits.sub_(c.lse.unsqueeze(1)).exp_();  // [c, V/tp]
      g.scatter_add_(1, t.local.unsqueeze(1), t.owned.to(torch::kFloat32).neg().unsqueeze(1));
      if (ig.defined()) g.masked_fill_(ig.unsqueeze(1), 0);
      grads.add(s, g, h, w32);
    });
  }
  return lhd::with_precomputed_grads(hidden, weight, total, grads.finish(hidden, weight, shard));
}

torch::Tensor fused_linear_token_log_probs(const torch::Tensor& hidden, const torch::Tensor& weight,
                                           const torch::Tensor& targets, int64_t chunk_tokens, const TpGroup& tp) {
  DIST_ASSERT(targets.defined());
  return lhd::token_stat(hidden, weight, targets, lhd::TokenStat::kLogProb, chunk_tokens, tp);
}

torch::Tensor fused_linear_entropy(const torch::Tensor& hidden, const torch::Tensor& weight, int64_t chunk_tokens,
                                   const TpGroup& tp) {
  return lhd::token_stat(hidden, weight, torch::Tensor(), lhd::TokenStat::kEntropy, chunk_tokens, tp);
}

std::pair<torch::Tensor, torch::Tensor> select_targets(const torch::Tensor& hidden, const torch::Tensor& targets) {
  auto flat_t = targets.reshape({-1});
  auto keep = (flat_t != kIgnoreIndex).nonzero().squeeze(1);                  // [N]
  auto flat_h = hidden.reshape({-1, hidden.size(-1)});                        // [B*T, H]
  return {flat_h.index_select(0, keep), flat_t.index_select(0, keep)};
}

}  // namespace distillery
