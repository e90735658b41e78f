// A sharded model's tensors against the checkpoint's whole tensors: where each local tensor sits
// in the full one (tp slices, experts held by an ep rank), slicing whole tensors into shards on
// load, gathering shards back into whole tensors on save, and the tp gradient sums that shard
// placement implies. Names are the checkpoint's names on every rank; routed experts keep their
// global index ("...experts.<e>..."), so rank r of an ep group of size P holds experts
// [r E/P, (r+1) E/P).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "parallel/grad_reducer.h"
#include "parallel/tp_shard.h"
#include "common/safetensors.h"

namespace distillery::parallel {

using ShardMap = std::map<std::string, TpShard>;

// Every tensor (parameter or buffer) that a TpSharded module of `root` describes, by full name.
ShardMap tp_shard_map(torch::nn::Module& root);

// The placement of `name` in `shards`, or of its parameter for optimizer-state names
// ("<param>.exp_avg", ".exp_avg_sq", ".master"); replicated when absent.
TpShard shard_of(const ShardMap& shards, const std::string& name);

std::vector<int64_t> full_shape(const torch::Tensor& local, const TpShard& s);
// This rank's slice of the whole tensor (a view: slicing a memory-mapped tensor reads only it).
torch::Tensor local_slice(const torch::Tensor& full, const TpShard& s);

// Routed-expert names: "<prefix>experts.<e>.<rest>" -> e (and the offsets of the number), or -1.
struct ExpertName {
  int64_t expert = -1;
  size_t begin = 0, end = 0;  // the digits of <e> in the name
  std::string with_expert(const std::string& name, int64_t e) const;
  // "<prefix>experts." : the block the expert belongs to.
  std::string prefix_of(const std::string& name) const { return name.substr(0, begin); }
};
ExpertName parse_expert_name(const std::string& name);

using ShardOf = std::function<TpShard(const std::string&)>;

// The whole tensors `local` is part of (names, dtypes, whole shapes), in single-process order:
// module order, the experts of a block in index order. No communication.
std::vector<TensorMeta> full_tensor_plan(const NamedTensors& local, const ShardOf& shard, const ModelParallel& mp,
                                         int64_t experts_per_rank);

// Collective over the tp and ep groups of `mp` (every rank of the world calls it with the same
// structure of `local`): assembles the whole tensors one at a time and hands each to `sink` on
// every rank (experts arrive grouped by local index, not in plan order). Only one whole tensor
// (or one per ep rank, for experts) exists at a time.
void for_each_full_tensor(const NamedTensors& local, const ShardOf& shard, const ModelParallel& mp,
                          int64_t experts_per_rank,
                          const std::function<void(const std::string& name, const torch::Tensor& whole)>& sink);

// The whole tensors in plan order, kept on ranks with keep=true (the others get an empty list).
NamedTensors gather_full(const NamedTensors& local, const ShardOf& shard, const ModelParallel& mp,
                         int64_t experts_per_rank, bool keep);

// After backward (before the optimizer): sums over tp the gradients each tp rank forms only in
// part: partial_grad tensors, and slices replicated over several tp ranks (summed over the ranks
// holding the same slice).
void sync_tp_partial_grads(const NamedTensors& params, const ShardMap& shards, Communicator& tp);

// How many ranks of the world hold an identical copy of each parameter: world / (tp slices x ep
// shards it is split into). A global gradient norm sums |g|^2 / copies over the world.
double param_copies(const std::string& name, const TpShard& s, int world_size, int ep_size);

}  // namespace distillery::parallel
