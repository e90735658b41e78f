// Token-level ops on top of the final hidden states: the output projection (lm_head) fused with
// what an algorithm needs from the next-token distribution, one implementation for one rank and
// for a vocabulary split over tensor parallelism.
//
// Common to every op:
//   hidden  [N, H]    the positions to score (select_targets picks them from [B, T, H]); any
//                     floating dtype; identical on every tp rank. Under tp it must NOT come
//                     through copy_to_tp: the ops sum its gradient over tp themselves.
//   weight  [V/tp, H] the output weight's rows this rank holds (CausalLM::output_weight()): rank r
//                     of the tp group holds vocabulary ids [r*V/tp, (r+1)*V/tp); with tp null or of
//                     size 1 it is the whole [V, H]. Gets this rank's rows of the full gradient, in
//                     its own dtype (a LoRA lm_head passes the gradient on to its adapters).
//   chunk_tokens      rows per chunk: logits exist only as [chunk_tokens, V/tp] fp32 at a time, never
//                     as [N, V] (nor [N, V/tp]) anywhere.
//   tp                the tensor-parallel group (null or one rank: tp=1).
// Everything is computed in fp32; results are identical (bitwise) on every tp rank, and equal to
// the tp=1 result up to fp32 summation order. Ids and targets are global vocabulary ids, checked
// before any collective (UserError naming the range). Collectives are the same on every tp rank
// for the same inputs, and there are none when N == 0 (a tp group shares N; dp replicas may differ).
// Tensors follow hidden's device.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "common/ignore_index.h"
#include "parallel/communicator.h"

namespace distillery {

using TpGroup = std::shared_ptr<parallel::Communicator>;

// Sum over tokens of cross-entropy(hidden @ weight^T, targets) (torch's cross_entropy with
// reduction=sum): sum_n lse_n - logit_n[target_n].
//   targets [N] int64 global ids in [0, V), or kIgnoreIndex (-100: adds 0, no gradient).
// Returns a 0-dim fp32 tensor: the summed loss (divide by the step's target-token count outside).
// Gradients are formed chunk by chunk during the forward (softmax - onehot) and scaled in backward,
// so backward makes no collective and recomputes nothing.
// Collectives: one allgather of [2, c] (each rank's log-sum-exp and target logit) per chunk, plus one
// allreduce of [N, H] fp32 when hidden requires grad. tp=1 keeps the arithmetic of the original
// single-rank version bit for bit.
torch::Tensor fused_linear_cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                             const torch::Tensor& targets, int64_t chunk_tokens,
                                             const TpGroup& tp = nullptr);

// Per-token log-probability of the targets, log softmax(hidden @ weight^T)[n, target_n] (GRPO's
// policy, old-policy and reference log-probs; TRL's selective_log_softmax).
//   targets [N] int64 global ids, or kIgnoreIndex (-100: log-prob 0, no gradient).
// Returns [N] fp32. Differentiable in hidden and weight: backward recomputes each chunk's logits
// from the saved log-sum-exps (the upstream gradient [N] must be the same on every tp rank).
// Collectives: forward one allgather of [2, c] per chunk; backward one allreduce of [N, H] fp32 when
// hidden requires grad.
torch::Tensor fused_linear_token_log_probs(const torch::Tensor& hidden, const torch::Tensor& weight,
                                           const torch::Tensor& targets, int64_t chunk_tokens,
                                           const TpGroup& tp = nullptr);

// Per-token entropy of the next-token distribution, H_n = -sum_v p_nv log p_nv, p = softmax(hidden @
// weight^T), in nats. Returns [N] fp32. Differentiable (dH/dlogit_v = -p_v (log p_v + H)), by the same
// recomputing backward as fused_linear_token_log_probs; callers that only log it run it under no_grad.
// Collectives: forward one allgather of [2, c] per chunk; backward as fused_linear_token_log_probs.
torch::Tensor fused_linear_entropy(const torch::Tensor& hidden, const torch::Tensor& weight, int64_t chunk_tokens,
                                   const TpGroup& tp = nullptr);

// The divergence between the policy (student) and another model (teacher), TRL's GKD
// generalized_jsd_loss (trl/experimental/gkd/gkd_trainer.py; Agarwal et al. 2024, "On-Policy
// Distillation of Language Models", arXiv:2306.13649, eq. 1), per token, with
//   p_s = softmax(student logits / temperature), p_t = softmax(teacher logits / temperature):
//   beta = 0:      KL(p_t || p_s)   forward KL, the classic distillation loss
//   beta = 1:      KL(p_s || p_t)   reverse KL
//   0 < beta < 1:  beta KL(p_t || m) + (1 - beta) KL(p_s || m),  m = (1 - beta) p_s + beta p_t
// (as in TRL, beta = 0 and 1 are the KLs themselves, not the limits of the mixture form, which
// vanish). Terms of probability 0 add 0 (0 log 0 = 0). The temperature^2 factor of Hinton et al.
// is not applied (TRL does not either): the caller scales if it wants it.
struct GeneralizedJsd {
  double beta;         // in [0, 1]; UserError otherwise
  double temperature;  // > 0; UserError otherwise
};

// The teacher's full distribution at the same N positions, over this rank's vocabulary shard:
// either its final hidden states and output weight (logits formed chunk by chunk, like the
// student's), or its logits. The teacher gets no gradient (its tensors are detached).
struct DenseTeacher {
  torch::Tensor hidden;  // [N, Ht] any floating dtype, with
  torch::Tensor weight;  // [V/tp, Ht] this rank's rows (a teacher sharded like the policy), or the
                         // whole [V, Ht] (a teacher loaded whole on every rank; its rows are taken)
  torch::Tensor logits;  // or: [N, V/tp] this rank's columns of its logits (any floating dtype)
  static DenseTeacher from_hidden(torch::Tensor hidden, torch::Tensor weight) { return {hidden, weight, {}}; }
  static DenseTeacher from_logits(torch::Tensor logits) { return {{}, {}, logits}; }
};

// The teacher as stored offline (DESIGN.md's teacher-logit store): per position its K most likely
// tokens and their log-probabilities under its full distribution at temperature 1.
//   ids      [N, K] int64 global vocabulary ids, distinct within a row (UserError otherwise)
//   logprobs [N, K] floating (fp32, bf16, fp16), <= 0, summing (as probabilities) to at most 1
//            (+1e-2 for rounding; UserError beyond: those would be logits, not log-probs)
// The missing mass is a tail bucket (DistillKit's MissingProbabilityHandling.SYMMETRIC_UNIFORM,
// distillkit/lossfuncs/kl.py): both distributions are read over K + 1 outcomes, the K ids and "any
// other token", with the teacher's tail mass 1 - sum_k exp(logprobs) (0 if negative) and the
// student's tail the sum of its probabilities off the K ids (a log-sum-exp, no cancellation). At
// temperature 1 the divergence of these coarsened distributions is a lower bound of the full one,
// equal to it when off the K ids the two distributions are proportional (e.g. a one-token tail).
// At T != 1 the teacher's K + 1 log-probs are divided by T and renormalized (its tail tempered as
// one outcome, as DistillKit does); the student's are exact at T. Where the student has no token
// off the K ids (K = V) the teacher's tail (then rounding) is dropped and its K renormalized. With
// beta = 1 (reverse KL) a position whose teacher tail is 0 while the student's is not is infinite,
// as the reverse KL is wherever the teacher has probability 0: use beta < 1 with such stores.
struct TopKTeacher {
  torch::Tensor ids;       // [N, K]
  torch::Tensor logprobs;  // [N, K]
};

// Sum over the N tokens of the generalized JSD between the student (hidden @ weight^T) and the
// teacher (distillation sums over the target tokens and normalizes by the global batch's count).
// Returns a 0-dim fp32 tensor. Gradients flow to hidden and weight only; they are formed during the
// forward and scaled in backward (no collective, no recompute in backward).
// Collectives, dense teacher: two allgathers per chunk, [c, 2] (both log-sum-exps) and [2, c] (this
// shard's divergence and gradient statistics); top-k teacher: one allgather of [c, K + 2] per chunk
// (log-sum-exp, off-top-k log-sum-exp, logits at the ids this rank holds). Both add one allreduce of
// [N, H] fp32 when hidden requires grad.
// Errors (UserError, before any collective): beta or temperature out of range; a teacher whose
// vocabulary or position count differs from the student's; top-k ids outside [0, V) or repeated in
// a row; top-k log-probs above 0 or summing above 1.
torch::Tensor fused_linear_generalized_jsd_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                               const DenseTeacher& teacher, GeneralizedJsd divergence,
                                               int64_t chunk_tokens, const TpGroup& tp = nullptr);
torch::Tensor fused_linear_generalized_jsd_sum(const torch::Tensor& hidden, const torch::Tensor& weight,
                                               const TopKTeacher& teacher, GeneralizedJsd divergence,
                                               int64_t chunk_tokens, const TpGroup& tp = nullptr);

// Rows of hidden [B, T, H] whose target is not kIgnoreIndex, and those targets: ([N, H], [N]).
std::pair<torch::Tensor, torch::Tensor> select_targets(const torch::Tensor& hidden, const torch::Tensor& targets);

}  // namespace distillery
