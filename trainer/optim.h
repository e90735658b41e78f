// AdamW over named parameters, with fp32 master weights for low-precision parameters, and the
// learning-rate schedule. State is keyed by parameter name so checkpoints are readable and
// survive a change of parallel layout.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "trainer/optim_config.h"

namespace distillery {

struct ParamSlot {
  std::string name;
  torch::Tensor param;   // the model's parameter (any dtype)
  torch::Tensor master;  // fp32 copy when param is not fp32, else undefined
  torch::Tensor exp_avg, exp_avg_sq;  // fp32
  bool decay = true;
};

// Norms, biases and 1-d parameters get no weight decay (the usual LLM practice).
bool default_weight_decay(const std::string& name, const torch::Tensor& p);

class AdamW {
 public:
  AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, const OptimConfig& cfg);
  // One update with learning rate `lr`; parameters without a gradient are skipped.
  void step(double lr);
  void zero_grad();
  int64_t step_count() const { return step_; }
  std::vector<ParamSlot>& slots() { return slots_; }

  // exp_avg/exp_avg_sq/master tensors by "<name>.exp_avg" etc., plus the step count.
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  void load_state_tensors(const std::function<torch::Tensor(const std::string&)>& get, int64_t step);

 private:
  OptimConfig cfg_;
  std::vector<ParamSlot> slots_;
  int64_t step_ = 0;
};

// Global L2 norm of all gradients (fp32); scales them down to max_norm when above it (max_norm > 0).
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

// Learning rate at optimizer step `step` (0-based): linear warmup to lr, then cosine/linear
// decay to lr*min_lr_ratio at max_steps, or constant.
double lr_at(const OptimConfig& cfg, int64_t step, int64_t max_steps);

}  // namespace distillery
