// Building blocks for a vocabulary split over the tensor-parallel group: the input embedding, and
// the exchanges the LM-head ops (models/lm_head.h) make to combine per-shard statistics, without
// ever gathering [tokens, V] on any rank.
//
// Sharding: with V rows split evenly over tp ranks, rank r holds rows [r*V/tp, (r+1)*V/tp) of the
// embedding / lm_head weight (`vocab_start` = r*V/tp); the columns of logits shard the same way.
// Token ids and targets are always GLOBAL ids; every rank of the tp group passes the same ids,
// hidden states and targets and gets the same result. A null or one-rank group is plain tp=1.
//
// Collectives: every function makes the same collectives on every tp rank for the same inputs,
// and none when the token count is 0 (ranks of one tp group always share their token count; it may
// differ across dp). Out-of-range ids are UserErrors, found before any collective.
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
