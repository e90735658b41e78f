#include "trainer/data_parallel.h"

namespace distillery {
namespace {

bool is_expert(const std::string& name) { return parallel::parse_expert_name(name).expert >= 0; }

}  // namespace

DataParallel::DataParallel(const parallel::Mesh& mesh, const ParallelConfig& cfg, torch::nn::Module& model,
                           AdamW& optimizer)
    : mesh_(mesh), optimizer_(optimizer), split_experts_(mesh.ep_size() > 1),
      zero_(cfg.zero_stage >= 1 && mesh.dp()->size() > 1) {
  for (auto& s : optimizer.slots()) {
    trainable_.emplace_back(s.name, s.param);
    (is_expert(s.name) ? experts_ : dense_).emplace_back(s.name, s.param);
  }
  const auto& dp = mesh.dp();
  parallel::broadcast_parameters(split_experts_ ? dense_ : trainable_, *dp, 0);
  if (split_experts_) parallel::broadcast_parameters(experts_, *mesh.expert_dp(), 0);
  reducer_ = std::make_unique<parallel::GradReducer>(split_experts_ ? dense_ : trainable_, dp, cfg.bucket_mb);
  if (split_experts_) expert_reducer_ = std::make_unique<parallel::GradReducer>(experts_, mesh.expert_dp(), cfg.bucket_mb);
  tp_shards_ = parallel::tp_shard_map(model);
  const int world = mesh.world()->size();
  for (const auto& [name, p] : trainable_) {
    params_.push_back(p);
    copies_.push_back(parallel::param_copies(name, parallel::shard_of(tp_shards_, name), world, mesh.ep_size()));
  }
  // ZeRO-1: dense weights' state is spread over dp; routed experts' over the ranks sharing them.
  if (zero_ && split_experts_) {
    optimizer.shard(dp->rank(), dp->size(), [](const ParamSlot& s) { return !is_expert(s.name); });
    optimizer.shard(mesh.expert_dp_rank(), mesh.expert_dp_size(), [](const ParamSlot& s) { return is_expert(s.name); });
  } else if (zero_) {
    optimizer.shard(dp->rank(), dp->size());
  }
}

void DataParallel::begin_micro_batch(bool last) {
  reducer_->begin_step(/*sync=*/last);
  if (expert_reducer_) expert_reducer_->begin_step(/*sync=*/last);
}

void DataParallel::finish_gradients() {
  // Losses are normalized by the global batch, so gradients are summed over ranks.
  reducer_->finish();
  if (expert_reducer_) expert_reducer_->finish();
  parallel::sync_tp_partial_grads(trainable_, tp_shards_, *mesh_.tp());
}

double DataParallel::clip_gradients(double max_norm) {
  return clip_grad_norm(params_, max_norm, copies_, mesh_.world().get());
}

void DataParallel::after_optimizer_step() {
  if (!zero_) return;
  torch::NoGradGuard no_grad;
  for (auto& s : optimizer_.slots()) {
    auto t = s.param.detach();
    (split_experts_ && is_expert(s.name) ? *mesh_.expert_dp() : *mesh_.dp()).broadcast(t, s.owner);
  }
}

}  // namespace distillery
