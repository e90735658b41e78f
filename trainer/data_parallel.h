// The data-parallel strategy of a run: every dp replica starts from the same weights, gradients
// are summed over the replicas in buckets while backward runs (dense weights over dp, routed
// experts over the ranks that hold the same experts: expert-dp), tensor-parallel partial gradients
// are completed, the global gradient norm counts each weight once, and with parallel.zero_stage 1
// the optimizer state is spread over the replicas (ZeRO-1, Rajbhandari et al. 2020), each rank
// updating its share and broadcasting it. docs/parallelism.md.
#pragma once

#include <memory>
#include <vector>

#include "parallel/grad_reducer.h"
#include "parallel/mesh.h"
#include "parallel/model_shards.h"
#include "parallel/parallel_config.h"
#include "trainer/optim.h"

namespace distillery {

class DataParallel {
 public:
  // Broadcasts the optimizer's parameters from dp rank 0 and sets up the reducers; with zero_stage 1
  // and more than one dp rank, shards `optimizer`. Collective over the world.
  DataParallel(const parallel::Mesh& mesh, const ParallelConfig& cfg, torch::nn::Module& model, AdamW& optimizer);
  // ZeRO-1 is on: checkpoints write one optimizer file per dp rank.
  bool sharded_optimizer() const { return zero_; }
  // Before each micro-batch's backward; `last`: the step's last micro-batch, whose backward completes
  // the reductions.
  void begin_micro_batch(bool last);
  // After the step's last backward: every rank holds the summed gradients of its weights.
  void finish_gradients();
  // Clips the gradients to max_norm (0: no clipping) by their global norm over every weight of the
  // model, counted once however it is replicated or sharded; returns the norm before clipping.
  double clip_gradients(double max_norm);
  // After optimizer.step: ZeRO-1 owners broadcast their updated weights. Collective.
  void after_optimizer_step();
  const parallel::NamedTensors& trainable() const { return trainable_; }

 private:
  const parallel::Mesh& mesh_;
  AdamW& optimizer_;
  bool split_experts_, zero_;
  parallel::NamedTensors trainable_, dense_, experts_;
  std::unique_ptr<parallel::GradReducer> reducer_, expert_reducer_;
  parallel::ShardMap tp_shards_;
  std::vector<torch::Tensor> params_;
  std::vector<double> copies_;  // ranks holding an identical copy of each weight
};

}  // namespace distillery
