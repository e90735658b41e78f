// The `optim:` section of a recipe: AdamW and the learning-rate schedule.
#pragma once

#include "common/config_fields.h"

namespace distillery {

struct OptimConfig {
  double lr = 1e-4;
  double min_lr_ratio = 0.0;
  std::string lr_schedule = "cosine";
  int64_t warmup_steps = 0;
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double max_grad_norm = 1.0;

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("lr", lr, "peak learning rate", gt(0));
    v("min_lr_ratio", min_lr_ratio, "floor of the decayed learning rate, as a fraction of lr", between(0, 1));
    v("lr_schedule", lr_schedule, "decay after warmup", one_of({"cosine", "linear", "constant"}));
    v("warmup_steps", warmup_steps, "optimizer steps of linear warmup from 0 to lr", ge(0));
    v("weight_decay", weight_decay, "decoupled AdamW weight decay; never applied to norms and biases", ge(0));
    v("beta1", beta1, "AdamW first-moment decay", between(0, 0.999999));
    v("beta2", beta2, "AdamW second-moment decay", between(0, 0.999999999));
    v("eps", eps, "AdamW denominator epsilon", gt(0));
    v("max_grad_norm", max_grad_norm, "clip the global gradient norm to this (0 disables clipping)", ge(0));
  }
};

}  // namespace distillery
