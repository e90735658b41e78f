#include "parallel/model_shards.h"

#include <algorithm>
#include <cctype>

#include "common/error.h"

namespace distillery::parallel {

ShardMap tp_shard_map(torch::nn::Module& root) {
  ShardMap out;
  for (const auto& item : root.named_modules("", /*include_self=*/true)) {
    const auto* sharded = dynamic_cast<const TpSharded*>(item.value().get());
    if (!sharded) continue;
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    for (const auto& [local, s] : sharded->tp_shards()) out[prefix + local] = s;
  }
  return out;
}

TpShard shard_of(const ShardMap& shards, const std::string& name) {
  auto it = shards.find(name);
  if (it != shards.end()) return it->second;
  for (const char* suffix : {".exp_avg_sq", ".exp_avg", ".master"}) {
    const std::string sfx = suffix;
    if (name.size() > sfx.size() && name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      it = shards.find(name.substr(0, name.size() - sfx.size()));
      if (it != shards.end()) return it->second;
    }
  }
  return {};
}

std::vector<int64_t> full_shape(const torch::Tensor& local, const TpShard& s) {
  auto shape = local.sizes().vec();
  if (s.sharded()) shape.at(s.dim) *= s.parts;
  return shape;
}

torch::Tensor local_slice(const torch::Tensor& full, const TpShard& s) {
  if (!s.sharded()) return full;
  const int64_t len = full.size(s.dim) / s.parts;
  return full.narrow(s.dim, s.index * len, len);
}

ExpertName parse_expert_name(const std::string& name) {
  static const std::string key = ".experts.";
  ExpertName e;
  const size_t at = name.find(key);
  if (at == std::string::npos) return e;
  size_t b = at + key.size(), end = b;
  while (end < name.size() && std::isdigit(static_cast<unsigned char>(name[end]))) ++end;
  if (end == b || end >= name.size() || name[end] != '.') return e;
  e.expert = std::stoll(name.substr(b, end - b));
  e.begin = b;
  e.end = end;
  return e;
}

std::string ExpertName::with_expert(const std::string& name, int64_t e) const {
  return name.substr(0, begin) + std::to_string(e) + name.substr(end);
}

namespace model_shards_detail {

// Concatenation over tp of each rank's slice along s.dim, keeping one copy of replicated slices.
torch::Tensor gather_tp(const torch::Tensor& local, const TpShard& s, Communicator& tp) {
  auto moved = local.transpose(0, s.dim).contiguous();           // the split dim first
  auto all = tp.allgather(moved);                                // [tp * len, ...]
  const int64_t len = moved.size(0), stride = tp.size() / s.parts;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < s.parts; ++i) parts.push_back(all.narrow(0, i * stride * len, len));
  return torch::cat(parts).transpose(0, s.dim).contiguous();
}

}  // namespace model_shards_detail

std::vector<TensorMeta> full_tensor_plan(const NamedTensors& local, const ShardOf& shard, const ModelParallel& mp,
                                         int64_t experts_per_rank) {
  struct Expert {
    int64_t expert;
    size_t order;  // the local tensor's position: its place within an expert (same structure everywhere)
    TensorMeta meta;
  };
  std::vector<TensorMeta> out;
  std::vector<std::string> blocks;                   // in order of first appearance
  std::map<std::string, std::vector<Expert>> experts;  // block -> every expert's tensors
  std::vector<std::pair<size_t, std::string>> block_at;  // (position in `out`, block) to splice in
  for (size_t i = 0; i < local.size(); ++i) {
    const auto& [name, t] = local[i];
    const TensorMeta meta{name, t.scalar_type(), full_shape(t, shard(name))};
    const ExpertName en = parse_expert_name(name);
    if (en.expert < 0) {
      out.push_back(meta);
      continue;
    }
    const std::string block = en.prefix_of(name);
    if (!experts.count(block)) block_at.emplace_back(out.size(), block);
    auto& list = experts[block];
    for (int r = 0; r < mp.ep_size(); ++r) {
      const int64_t e = en.expert + (r - mp.ep_rank()) * experts_per_rank;
      TensorMeta m = meta;
      m.name = en.with_expert(name, e);
      list.push_back({e, i, m});
    }
  }
  // Splice each block's experts, sorted by (expert, place within the expert), where it first appeared.
  for (auto it = block_at.rbegin(); it != block_at.rend(); ++it) {
    auto& list = experts[it->second];
    std::stable_sort(list.begin(), list.end(), [](const Expert& a, const Expert& b) {
      return a.expert != b.expert ? a.expert < b.expert : a.order < b.order;
    });
    std::vector<TensorMeta> metas;
    for (auto& e : list) metas.push_back(e.meta);
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(it->first), metas.begin(), metas.end());
  }
  return out;
}

void for_each_full_tensor(const NamedTensors& local, const ShardOf& shard, const ModelParallel& mp,
                          int64_t experts_per_rank,
                          const std::function<void(const std::string& name, const torch::Tensor& whole)>& sink) {
  for (const auto& [name, t0] : local) {
    torch::Tensor t = t0.detach();
    const TpShard s = shard(name);
    if (s.sharded() && mp.tp_size() > 1) t = model_shards_detail::gather_tp(t, s, *mp.tp);
    const ExpertName en = parse_expert_name(name);
    if (en.expert < 0 || mp.ep_size() == 1) {
      sink(name, t);
      continue;
    }
    auto all = mp.ep->allgather(t.contiguous().unsqueeze(0));  // [ep, ...]: rank r's expert e + (r - me) * per_rank
    for (int r = 0; r < mp.ep_size(); ++r)
      sink(en.with_expert(name, en.expert + (r - mp.ep_rank()) * experts_per_rank), all[r]);
  }
}

NamedTensors gather_full(const NamedTensors& local, const ShardOf& shard, const ModelParallel& mp,
                         int64_t experts_per_rank, bool keep) {
  std::map<std::string, torch::Tensor> got;
  for_each_full_tensor(local, shard, mp, experts_per_rank, [&](const std::string& name, const torch::Tensor& whole) {
    if (keep) got[name] = whole.clone();
  });
  NamedTensors out;
  if (!keep) return out;
  for (const auto& m : full_tensor_plan(local, shard, mp, experts_per_rank)) out.emplace_back(m.name, got.at(m.name));
  return out;
}

void sync_tp_partial_grads(const NamedTensors& params, const ShardMap& shards, Communicator& tp) {
  if (tp.size() == 1) return;
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : params) {
    auto it = shards.find(name);
    if (it == shards.end() || !p.requires_grad()) continue;
    const TpShard& s = it->second;
    const bool replicated_slice = s.dim >= 0 && s.parts < tp.size();
    if (!s.partial_grad && !replicated_slice) continue;
    // Every tp rank takes part, with a zero gradient if its backward produced none.
    torch::Tensor g = p.grad().defined() ? p.grad() : torch::zeros_like(p);
    if (s.partial_grad) {
      auto sum = g.contiguous().clone();
      tp.allreduce(sum);
      p.mutable_grad() = sum;
      continue;
    }
    // Sum over the ranks holding the same slice: each writes into its slot of a zero buffer.
    auto buf = torch::zeros({s.parts, g.numel()}, g.options());
    buf[s.index].copy_(g.reshape({-1}));
    tp.allreduce(buf);
    p.mutable_grad() = buf[s.index].reshape(g.sizes()).clone();
  }
}

double param_copies(const std::string& name, const TpShard& s, int world_size, int ep_size) {
  double distinct = 1;
  if (s.dim >= 0) distinct *= static_cast<double>(s.parts);
  if (parse_expert_name(name).expert >= 0) distinct *= ep_size;
  return static_cast<double>(world_size) / distinct;
}

}  // namespace distillery::parallel
