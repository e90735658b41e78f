// The autograd-aware collectives tensor parallelism is built from (Megatron's f and g):
//   copy_to_tp      forward: identity           backward: sum of the gradient over the tp group
//   reduce_from_tp  forward: sum over tp group  backward: identity
// A column-parallel layer feeds its input through copy_to_tp (each rank's share of the input
// gradient is partial), a row-parallel layer sums its partial outputs with reduce_from_tp.
// With a group of size 1 both return their input unchanged and record nothing.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "parallel/communicator.h"

namespace distillery::parallel {

torch::Tensor copy_to_tp(const torch::Tensor& x, const std::shared_ptr<Communicator>& tp);
torch::Tensor reduce_from_tp(const torch::Tensor& x, const std::shared_ptr<Communicator>& tp);

// `t` summed over the tp group, outside autograd: statistics a layer needs whole, e.g. DoRA's
// weight-row norm over a row-parallel layer's column shards. A null or one-rank group returns `t`.
torch::Tensor sum_over_tp(torch::Tensor t, const std::shared_ptr<Communicator>& tp);

// The backward of a loss whose gradients were formed during its forward (the chunked LM-head
// losses): each saved gradient (or undefined) times the incoming gradient of the scalar loss.
std::vector<torch::Tensor> scale_precomputed_grads(const std::vector<torch::Tensor>& saved, const torch::Tensor& g);

}  // namespace distillery::parallel
