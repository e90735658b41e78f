// Data parallelism: sums every parameter's gradient over the dp group at the end of each
// optimizer step, overlapping the communication with the rest of the backward pass.
//
// Why SUM, not mean: losses in distillery are normalised by the number of target tokens of the
// whole optimizer step on all dp ranks (see DESIGN.md), so each rank's gradient is already its
// share of the global mean and the sum over ranks is the global gradient.
//
// Use, per optimizer step with K micro-batches:
//   for k in 0..K-1: reducer.begin_step(/*sync=*/k == K-1); loss_k.backward();
//   reducer.finish();            // every rank's .grad now holds the dp-summed gradient
//   optimizer.step();
//
// How: parameters are grouped into buckets of ~bucket_mb in reverse registration order (the
// order backward produces their gradients). A post-hook on each parameter's gradient
// accumulator (it runs after .grad has been updated) counts the bucket's parameters as they
// become final during the last micro-batch's backward; when a bucket is complete it is
// flattened and its allreduce is started asynchronously, while backward goes on computing the
// gradients of earlier layers. Buckets are started strictly in order, so every rank issues the
// same collectives in the same sequence even when gradients become ready in different orders.
// finish() starts the buckets still open (parameters that got no gradient in this backward,
// e.g. an unused branch or an expert no token reached, whose .grad is final anyway), waits for
// all of them and copies the sums back into each .grad (defining .grad where it was undefined).
//
// What overlaps: with NCCL the allreduces run on a side stream, concurrently with the backward
// kernels. With MPI on CPU, Open MPI advances a nonblocking collective only inside MPI calls
// (the next bucket's start, the waits in finish()), so part of the transfer overlaps and the
// rest completes in finish(); the result is the same either way.
//
// Each parameter must receive its gradient at most once per backward (true for any ordinary
// graph, shared/tied weights included); a second accumulation in the same backward, e.g. from
// reentrant activation checkpointing, is reported as an error rather than silently dropped.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "parallel/communicator.h"

namespace distillery::parallel {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// `named` as a NamedTensors, in order (e.g. from torch::nn::Module::named_parameters()).
NamedTensors to_named_tensors(const torch::OrderedDict<std::string, torch::Tensor>& named);

class GradReducer {
 public:
  struct Stats {
    int buckets = 0;                   // buckets reduced in the last step
    int launched_during_backward = 0;  // of them, started from a hook (overlapped with backward)
    int64_t bytes = 0;                 // gradient bytes reduced per step
  };

  // `params` in registration order; those with requires_grad=false are skipped. Construct
  // after the model is on its final device and dtype. A dp group of size 1 makes every call a
  // no-op.
  GradReducer(const NamedTensors& params, std::shared_ptr<Communicator> dp, double bucket_mb = 25.0);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Call before each micro-batch's backward; `sync` is true for the last micro-batch of the
  // optimizer step, whose backward starts the reduction. Backwards without sync only accumulate.
  void begin_step(bool sync);
  // After the last micro-batch's backward: completes the reduction into every .grad.
  void finish();

  const Stats& last_stats() const;
  // Parameter names per bucket, in launch order (for tests and logs).
  std::vector<std::vector<std::string>> bucket_names() const;

  struct State;  // shared with the autograd hooks

 private:
  std::shared_ptr<State> state_;
};

// Copies rank `root`'s values of `tensors` into every rank's (in place, under no_grad), so all
// replicas start identical. Tensors are flattened into ~64 MB chunks per dtype, so a model
// with hundreds of parameters needs a handful of broadcasts.
void broadcast_parameters(const std::vector<torch::Tensor>& tensors, Communicator& comm, int root = 0);
void broadcast_parameters(const NamedTensors& tensors, Communicator& comm, int root = 0);

}  // namespace distillery::parallel
