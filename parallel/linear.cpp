#include "parallel/linear.h"

#include "parallel/tp_ops.h"
#include "common/error.h"

namespace distillery {

TpLinear TpLinear::column(const parallel::ModelParallel& mp, bool collective) {
  return column_replicated(mp, mp.tp_size(), collective);
}

TpLinear TpLinear::row(const parallel::ModelParallel& mp, bool collective) {
  TpLinear t;
  if (mp.tp_size() == 1) return t;
  t.style = TpStyle::kRow;
  t.comm = mp.tp;
  t.index = mp.tp_rank();
  t.parts = mp.tp_size();
  t.collective = collective;
  return t;
}

TpLinear TpLinear::column_replicated(const parallel::ModelParallel& mp, int64_t parts, bool collective) {
  TpLinear t;
  if (mp.tp_size() == 1) return t;
  DIST_ASSERT(parts >= 1 && mp.tp_size() % parts == 0, "column split into ", parts, " for tp ", mp.tp_size());
  t.style = TpStyle::kColumn;
  t.comm = mp.tp;
  t.parts = parts;
  t.index = mp.tp_rank() / (mp.tp_size() / parts);
  t.collective = collective;
  return t;
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool has_bias, TpLinear tp) : tp_(std::move(tp)) {
  if (tp_.style == TpStyle::kColumn) {
    DIST_ASSERT(out % tp_.parts == 0, "column-parallel output ", out, " over ", tp_.parts);
    out /= tp_.parts;
  } else if (tp_.style == TpStyle::kRow) {
    DIST_ASSERT(in % tp_.parts == 0, "row-parallel input ", in, " over ", tp_.parts);
    in /= tp_.parts;
  }
  in_features = in;
  out_features = out;
  weight = register_parameter("weight", torch::empty({out, in}));
  if (has_bias) bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor LinearImpl::local_bias() const { return tp_.style == TpStyle::kRow ? torch::Tensor() : bias; }

torch::Tensor LinearImpl::base_forward(const torch::Tensor& x) const { return torch::linear(x, weight, local_bias()); }

torch::Tensor LinearImpl::effective_weight() { return active_adapter() ? adapter_->merged_weight(*this) : weight; }

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  if (tp_.style == TpStyle::kNone) return active_adapter() ? adapter_->forward(x, *this) : base_forward(x);
  if (tp_.style == TpStyle::kColumn) {
    auto in = tp_.collective ? parallel::copy_to_tp(x, tp_.comm) : x;
    return active_adapter() ? adapter_->forward(in, *this) : base_forward(in);
  }
  auto partial = active_adapter() ? adapter_->forward(x, *this) : base_forward(x);
  if (!tp_.collective) return partial;  // the caller reduces (and adds any bias)
  auto y = parallel::reduce_from_tp(partial, tp_.comm);
  return bias.defined() ? y + bias.to(y.scalar_type()) : y;
}

parallel::TpShard LinearImpl::out_shard() const {
  parallel::TpShard s;
  if (tp_.style == TpStyle::kColumn) s.dim = 0, s.index = tp_.index, s.parts = tp_.parts;
  return s;
}

parallel::TpShard LinearImpl::in_shard() const {
  parallel::TpShard s;
  if (tp_.style == TpStyle::kRow) s.dim = 1, s.index = tp_.index, s.parts = tp_.parts;
  return s;
}

std::vector<std::pair<std::string, parallel::TpShard>> LinearImpl::tp_shards() const {
  std::vector<std::pair<std::string, parallel::TpShard>> out;
  if (tp_.style == TpStyle::kColumn) {
    out.emplace_back("weight", out_shard());
    if (bias.defined()) out.emplace_back("bias", out_shard());
  } else if (tp_.style == TpStyle::kRow) {
    out.emplace_back("weight", in_shard());
  }
  return out;
}

void LinearImpl::attach_adapter(const std::string& name, std::shared_ptr<LinearAdapter> adapter) {
  detach_adapter();
  adapter_ = register_module(name, std::move(adapter));
  adapter_name_ = name;
}

void LinearImpl::detach_adapter() {
  if (!adapter_) return;
  unregister_module(adapter_name_);
  adapter_.reset();
  adapter_name_.clear();
}

}  // namespace distillery
