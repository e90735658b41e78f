#include "trainer/optim.h"

#include <cmath>

#include "common/error.h"

namespace distillery {

bool default_weight_decay(const std::string& name, const torch::Tensor& p) {
  if (p.dim() < 2) return false;
  return name.find("norm") == std::string::npos && name.find(".bias") == std::string::npos;
}

AdamW::AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, const OptimConfig& cfg) : cfg_(cfg) {
  for (const auto& [name, p] : params) {
    if (!p.requires_grad()) continue;
    ParamSlot s;
    s.name = name;
    s.param = p;
    if (p.scalar_type() != torch::kFloat32) s.master = p.detach().to(torch::kFloat32).clone();
    s.exp_avg = torch::zeros(p.sizes(), p.options().dtype(torch::kFloat32));
    s.exp_avg_sq = torch::zeros(p.sizes(), p.options().dtype(torch::kFloat32));
    s.decay = default_weight_decay(name, p);
    slots_.push_back(std::move(s));
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(step_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(step_));
  const double step_size = lr / bc1;
  const double bc2_sqrt = std::sqrt(bc2);
  for (auto& s : slots_) {
    if (!owns(s) || !s.param.grad().defined()) continue;
    auto g = s.param.grad().to(torch::kFloat32);
    auto w = s.master.defined() ? s.master : s.param;
    // Same arithmetic and order as torch.optim.AdamW (single-tensor path).
    if (s.decay && cfg_.weight_decay > 0) w.mul_(1.0 - lr * cfg_.weight_decay);
    s.exp_avg.lerp_(g, 1.0 - cfg_.beta1);
    s.exp_avg_sq.mul_(cfg_.beta2).addcmul_(g, g, 1.0 - cfg_.beta2);
    auto denom = (s.exp_avg_sq.sqrt() / bc2_sqrt).add_(cfg_.eps);
    w.addcdiv_(s.exp_avg, denom, -step_size);
    if (s.master.defined()) s.param.copy_(s.master);
  }
}

void AdamW::zero_grad() {
  for (auto& s : slots_) {
    auto& g = s.param.mutable_grad();
    if (g.defined()) g.zero_();
  }
}

void AdamW::shard(int rank, int size, const std::function<bool(const ParamSlot&)>& in_group) {
  // Largest first onto the least loaded rank: balanced, and the same on every rank of the group.
  std::vector<size_t> order;
  for (size_t i = 0; i < slots_.size(); ++i)
    if (!in_group || in_group(slots_[i])) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return slots_[a].param.numel() > slots_[b].param.numel(); });
  std::vector<int64_t> load(size, 0);
  for (size_t i : order) {
    const int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    slots_[i].owner = r;
    slots_[i].owned = r == rank;
    load[r] += slots_[i].param.numel();
  }
  for (size_t i : order) {
    auto& s = slots_[i];
    if (!s.owned) s.exp_avg = s.exp_avg_sq = s.master = torch::Tensor();
  }
}

std::vector<std::pair<std::string, torch::Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& s : slots_) {
    if (!owns(s)) continue;
    out.emplace_back(s.name + ".exp_avg", s.exp_avg);
    out.emplace_back(s.name + ".exp_avg_sq", s.exp_avg_sq);
    if (s.master.defined()) out.emplace_back(s.name + ".master", s.master);
  }
  return out;
}

void AdamW::load_state_tensors(const std::function<torch::Tensor(const std::string&)>& get, int64_t step) {
  torch::NoGradGuard no_grad;
  auto load = [&](torch::Tensor& dst, const std::string& key) {
    auto src = get(key);
    DIST_CHECK(src.sizes() == dst.sizes(), "optimizer state '", key, "' has shape ", src.sizes(), ", expected ",
               dst.sizes());
    dst.copy_(src);
  };
  for (auto& s : slots_) {
    if (!owns(s)) continue;
    load(s.exp_avg, s.name + ".exp_avg");
    load(s.exp_avg_sq, s.name + ".exp_avg_sq");
    if (s.master.defined()) {
      load(s.master, s.name + ".master");
      s.param.copy_(s.master);
    }
  }
  step_ = step;
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm, const std::vector<double>& copies,
                      parallel::Communicator* world) {
  torch::NoGradGuard no_grad;
  DIST_ASSERT(copies.empty() || copies.size() == params.size(), copies.size(), " copies for ", params.size(), " params");
  torch::Tensor sq = torch::zeros({1}, torch::kFloat64);
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& g = params[i].grad();
    if (!g.defined()) continue;
    auto s = g.to(torch::kFloat64).pow(2).sum().cpu();
    sq += copies.empty() ? s : s / copies[i];
  }
  if (world && world->size() > 1) world->allreduce(sq);
  const double norm = std::sqrt(sq.item<double>());
  if (max_norm > 0 && norm > max_norm) {
    const double coef = max_norm / (norm + 1e-6);
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(coef);
  }
  return norm;
}

double lr_at(const OptimConfig& cfg, int64_t step, int64_t max_steps) {
  if (cfg.warmup_steps > 0 && step < cfg.warmup_steps)
    return cfg.lr * static_cast<double>(step + 1) / static_cast<double>(cfg.warmup_steps);
  if (cfg.lr_schedule == "constant") return cfg.lr;
  const double span = static_cast<double>(std::max<int64_t>(1, max_steps - cfg.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - cfg.warmup_steps) / span);
  const double min_lr = cfg.lr * cfg.min_lr_ratio;
  const double shape = cfg.lr_schedule == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return min_lr + (cfg.lr - min_lr) * shape;
}

}  // namespace distillery
