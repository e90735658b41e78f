// Expert parallelism: the routed experts of a MoE layer are split evenly over an ep group and each
// token slot travels to the rank that holds its expert and back (GShard / DeepSpeed-MoE style,
// dropless: no capacity, every slot is computed).
//
//   all_to_all_autograd  forward: rows of x go to ranks by send_counts   backward: the gradient
//                        comes back the same way with the counts swapped
//   expert_parallel_moe  the ep counterpart of RoutedExpertsImpl::forward (models/moe.h), which
//                        hands this rank's experts in as LocalExperts: parallel/ knows no model
//
// Both are collectives: every rank of the group calls them together, in the same order, and every
// rank backpropagates through the result (the backward exchanges are collectives too). Under grad
// mode, whether x requires grad must agree over the group, as it does for any layer fed by
// trainable weights: a rank whose x does not would skip the backward exchange the others wait in.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

#include "parallel/communicator.h"

namespace distillery::parallel {

// x [S, ...]: rows [offsets of send_counts] go to ranks 0..n-1; returns the [R, ...] rows received,
// in source-rank order (R = sum of recv_counts). A group of size 1 returns x.
torch::Tensor all_to_all_autograd(const torch::Tensor& x, const std::vector<int64_t>& send_counts,
                                  const std::vector<int64_t>& recv_counts, const std::shared_ptr<Communicator>& comm);

// The routed experts an ep rank holds: experts [first, first + count) of count * ep, and how to
// run them. run_grouped(x_sorted [M, H], counts [count]) returns the [M, H] outputs of x_sorted's
// rows, counts[i] rows for local expert i in order (models/moe.h: RoutedExpertsImpl::run_grouped).
struct LocalExperts {
  int64_t first = 0, count = 0;
  std::function<torch::Tensor(const torch::Tensor& x_sorted, const std::vector<int64_t>& counts)> run_grouped;
};

// sum_j weights[n, j] * expert_{experts[n, j]}(x[n]) over all E experts, with the experts split
// over `ep`: rank j holds `local` = experts [j*E/ep, (j+1)*E/ep). x [N, H] (this rank's tokens, N may
// be 0), experts [N, k] int64 global ids, weights [N, k] fp32 -> [N, H] in x's dtype, accumulated in
// fp32. Equal, in value and gradient, to RoutedExpertsImpl(all experts).forward on one process.
// Needs a group of two or more ranks (with one, the model runs its experts itself).
torch::Tensor expert_parallel_moe(const torch::Tensor& x, const torch::Tensor& experts, const torch::Tensor& weights,
                                  const LocalExperts& local, const std::shared_ptr<Communicator>& ep);

}  // namespace distillery::parallel
