// How a rank's tensor relates to the checkpoint's full tensor under tensor parallelism, and the
// model-parallel groups a model is built for. Every module with parameters that tp shards, or
// whose gradient tp leaves partial, describes them through TpSharded, so checkpoint loading,
// saving and gradient synchronisation need no knowledge of layer types.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "parallel/communicator.h"

namespace distillery::parallel {

struct TpShard {
  int dim = -1;       // the sharded dimension; -1: every tp rank holds the whole tensor
  int64_t index = 0;  // this rank holds slice `index` of `parts` equal slices along `dim`
  int64_t parts = 1;  // < tp size when a slice is replicated (KV heads with tp > num_key_value_heads)
  // Whole tensor on every rank, but each rank's gradient is only its share (a norm applied to this
  // rank's heads, a LoRA factor next to a sharded one): gradients are summed over tp.
  bool partial_grad = false;
  bool sharded() const { return dim >= 0 && parts > 1; }
};

// The groups a model is built for; empty pointers mean size 1.
struct ModelParallel {
  std::shared_ptr<Communicator> tp;  // tensor-parallel group
  std::shared_ptr<Communicator> ep;  // expert-parallel group (experts split evenly over it)
  int tp_size() const { return tp ? tp->size() : 1; }
  int tp_rank() const { return tp ? tp->rank() : 0; }
  int ep_size() const { return ep ? ep->size() : 1; }
  int ep_rank() const { return ep ? ep->rank() : 0; }
};

// Implemented by modules whose own (non-recursive) parameters are tp-sharded or tp-partial.
class TpSharded {
 public:
  virtual ~TpSharded() = default;
  // (local parameter name, placement) for each such parameter of this module.
  virtual std::vector<std::pair<std::string, TpShard>> tp_shards() const = 0;
};

}  // namespace distillery::parallel
