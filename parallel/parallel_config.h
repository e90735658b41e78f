// The `parallel:` section of a recipe. The data-parallel size is what remains of the world size
// (mpirun -np N) after tensor parallelism: dp = N / tp. Expert parallelism is carved inside dp.
#pragma once

#include "common/config_fields.h"

namespace distillery {

struct ParallelConfig {
  int64_t tp = 1;
  int64_t ep = 1;
  int64_t zero_stage = 0;
  double bucket_mb = 25.0;
  double timeout_s = 1800.0;

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("tp", tp,
      "tensor-parallel degree: attention heads, MLP/expert widths and the vocabulary split over tp consecutive ranks "
      "(keep a tp group inside one node); divides the world size",
      ge(1));
    v("ep", ep,
      "expert-parallel degree (MoE models): each rank of an ep group holds num_experts/ep routed experts and tokens "
      "travel to them by all-to-all; divides the data-parallel size",
      ge(1));
    v("zero_stage", zero_stage,
      "0: every dp rank keeps the whole optimizer state; 1: the state is sharded over dp ranks (ZeRO-1)",
      between(0, 1));
    v("bucket_mb", bucket_mb, "gradient all-reduce bucket size; buckets start during backward as they fill", gt(0));
    v("timeout_s", timeout_s,
      "seconds a rank waits in one collective before it ends the job, naming the collective, the step and the "
      "ranks that did not arrive (a stalled or lost rank); 0 waits forever",
      ge(0));
  }
};

}  // namespace distillery
