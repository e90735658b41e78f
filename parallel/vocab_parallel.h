// Building blocks for a vocabulary split over the tensor-parallel group: the input embedding, the
// lm_head + cross-entropy, and the distillation KL, each computed from one shard of the vocabulary
// per rank without ever gathering [tokens, V] on any rank.
//
// Sharding: with V rows split evenly over tp ranks, rank r holds rows [r*V/tp, (r+1)*V/tp) of the
// embedding / lm_head weight (`vocab_start` = r*V/tp); the columns of logits shard the same way.
// Token ids and targets are always GLOBAL ids; every rank of the tp group passes the same ids,
// hidden states and targets and gets the same result. A null or one-rank group is plain tp=1.
//
// Collectives: every function makes the same collectives on every tp rank for the same inputs,
// and none when the token count is 0 (ranks of one tp group always share their token count; it may
// differ across dp). Out-of-range ids / targets are UserErrors, found before any collective.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "parallel/communicator.h"

namespace distillery::parallel {

// Embedding lookup with a vocab-sharded table.
//   ids [...] int64 global ids in [0, tp * V/tp); weight_shard [V/tp, H].
// Returns [..., H] in weight_shard's dtype, identical on every tp rank and equal to the full
// table's lookup (each rank looks up the ids it holds, zeros elsewhere, summed over tp with
// reduce_from_tp). weight_shard's gradient is this shard's rows of the full table's gradient.
torch::Tensor vocab_parallel_embedding(const torch::Tensor& ids, const torch::Tensor& weight_shard,
                                       int64_t vocab_start, const std::shared_ptr<Communicator>& tp);

// fused_linear_cross_entropy_sum (models/lm_head.h) with a vocab-sharded lm_head weight: sum over
// tokens of cross-entropy(hidden @ weight^T, targets), in fp32, in chunks of `chunk_tokens` rows.
//   hidden [N, H] identical on every tp rank; weight_shard [V/tp, H]; targets [N] int64 global ids.
// Per chunk each rank forms its [c, V/tp] logits, and one allgather of the per-rank
// (log-sum-exp, target logit) pairs [2, c] gives every rank the global log-sum-exp and target logit.
// Gradients are formed in the forward and scaled in backward, as in the tp=1 version:
//   - hidden gets the FULL gradient (sum over tp of each shard's softmax-grad @ w_shard, reduced
//     once per call in fp32). So hidden must NOT come through copy_to_tp, whose backward would sum
//     it over tp a second time.
//   - weight_shard gets its own rows of the full weight gradient.
// Returns the 0-dim fp32 summed loss, identical on every tp rank. Collectives per call: one
// allgather per chunk, plus one allreduce of [N, H] fp32 when hidden requires grad.
torch::Tensor vocab_parallel_cross_entropy_sum(const torch::Tensor& hidden, const torch::Tensor& weight_shard,
                                               const torch::Tensor& targets, int64_t vocab_start,
                                               int64_t chunk_tokens, const std::shared_ptr<Communicator>& tp);

// Sum over tokens of the forward KL(p_teacher || p_student), p = softmax(logits / temperature) over
// the full vocabulary, from vocab shards of both logits.
//   student_logits, teacher_logits [N, V/tp] (same shard of the same vocab on each rank), any
//   floating dtype; computed in fp32.
// The temperature^2 factor of Hinton et al. is NOT applied: the caller scales (the usual
// distillation loss is temperature^2 * this / target tokens).
// Teacher entries with probability 0 (logit -inf, e.g. padded vocab) contribute 0.
// Returns the 0-dim fp32 sum, identical on every tp rank. student_logits gets its shard of the
// gradient, (p_student - p_teacher) / temperature, in its own dtype; teacher_logits gets none.
// Collectives: one allgather of [2, N] (the per-rank log-sum-exps) and one allreduce of a scalar;
// none in backward.
torch::Tensor vocab_parallel_kl_div_sum(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                        double temperature, const std::shared_ptr<Communicator>& tp);

// Throws UserError unless every id lies in [0, vocab) (with `allow_ignore`, kIgnoreIndex is
// accepted too); `what` names the ids in the message ("targets", "token ids"). Returns whether any
// id is kIgnoreIndex. Ids are the same on every tp rank, so it throws on all of them or none, before
// any collective. One host sync; none for no ids.
bool check_vocab_ids(const torch::Tensor& ids, int64_t vocab, const char* what, bool allow_ignore = false);

// Every rank's per-token statistics of its vocabulary shard, for the LM-head ops that combine them
// by hand: mine [k, c] (or [c, k]; any shape, equal on every rank) -> [tp, ...mine's shape] on every
// rank, in rank order. Whatever a rank computes from the result is computed from the same numbers on
// every rank, so it is bitwise identical across the group. No autograd. One allgather; with a null
// or one-rank group none, and the result is mine.unsqueeze(0) (no copy).
torch::Tensor gather_shard_stats(const torch::Tensor& mine, Communicator* tp);

// t (contiguous) <- its sum over the tp group, in place; no autograd. The hidden-state gradient a
// vocab-parallel LM-head op forms by hand is partial on each rank (this shard's columns' share).
// One allreduce; none with a null or one-rank group.
void sum_shard_partials_(torch::Tensor& t, Communicator* tp);

// Logits split by vocabulary columns, local [..., V/tp] -> [..., V] on every rank (columns in rank
// order), detached: for inspection and generation, never for a loss (models/lm_head.h computes
// those without forming [tokens, V]). One allgather; with a null or one-rank group none (local is
// returned as is).
torch::Tensor gather_vocab_columns(const torch::Tensor& local, const std::shared_ptr<Communicator>& tp);

}  // namespace distillery::parallel
