// The `parallel:` section of a recipe. The data-parallel size is the world size (mpirun -np N).
#pragma once

#include "trainer/config_fields.h"

namespace distillery {

struct ParallelConfig {
  int64_t zero_stage = 0;
  double bucket_mb = 25.0;

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("zero_stage", zero_stage,
      "0: every dp rank keeps the whole optimizer state; 1: the state is sharded over dp ranks (ZeRO-1)",
      between(0, 1));
    v("bucket_mb", bucket_mb, "gradient all-reduce bucket size; buckets start during backward as they fill", gt(0));
  }
};

}  // namespace distillery
