// AdamW over named parameters, with fp32 master weights for low-precision parameters, and the
// learning-rate schedule. State is keyed by parameter name so checkpoints are readable and
// survive a change of parallel layout.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "parallel/communicator.h"
#include "trainer/optim_config.h"

namespace distillery {

struct ParamSlot {
  std::string name;
  torch::Tensor param;   // the model's parameter (any dtype)
  torch::Tensor master;  // fp32 copy when param is not fp32, else undefined
  torch::Tensor exp_avg, exp_avg_sq;  // fp32; undefined on ranks that do not own the slot
  bool decay = true;
  int owner = 0;       // the rank (of the slot's group) that steps this parameter (ZeRO-1); 0 when unsharded
  bool owned = true;   // this rank is the owner
};

// Norms, biases and 1-d parameters get no weight decay (the usual LLM practice).
bool default_weight_decay(const std::string& name, const torch::Tensor& p);

class AdamW {
 public:
  AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, const OptimConfig& cfg);
  // One update with learning rate `lr` of the parameters this rank owns; parameters without a
  // gradient are skipped.
  void step(double lr);
  // ZeRO-1: give each slot `in_group` selects (all when unset) an owner among the `size` ranks of its
  // group (balanced by size, deterministic) and keep state only for the slots `rank` owns. Called
  // once per group (dense weights over dp, routed experts over expert-dp). After step(), each
  // owner broadcasts its parameters over the slot's group.
  void shard(int rank, int size, const std::function<bool(const ParamSlot&)>& in_group = {});
  bool owns(const ParamSlot& s) const { return s.owned; }
  void zero_grad();
  int64_t step_count() const { return step_; }
  std::vector<ParamSlot>& slots() { return slots_; }

  // exp_avg/exp_avg_sq/master tensors of the owned slots by "<name>.exp_avg" etc.
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  // Restores the owned slots' state (by parameter name, so any former sharding works).
  void load_state_tensors(const std::function<torch::Tensor(const std::string&)>& get, int64_t step);

 private:
  OptimConfig cfg_;
  std::vector<ParamSlot> slots_;
  int64_t step_ = 0;
};

// Global L2 norm of all gradients (fp32); scales them down to max_norm when above it (max_norm > 0).
// Sharded models: `copies[i]` is how many ranks of `world` hold an identical copy of params[i]
// (parallel::param_copies), and the norm sums |g|^2 / copies over the world, so every distinct
// slice and expert counts once.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm, const std::vector<double>& copies = {},
                      parallel::Communicator* world = nullptr);

// Learning rate at optimizer step `step` (0-based): linear warmup to lr, then cosine/linear
// decay to lr*min_lr_ratio at max_steps, or constant.
double lr_at(const OptimConfig& cfg, int64_t step, int64_t max_steps);

}  // namespace distillery
