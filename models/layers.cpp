#include "models/layers.h"

#include <cmath>

#include "parallel/tp_ops.h"

namespace distillery {
namespace rope_detail {

// Hugging Face's _compute_yarn_parameters (and DeepSeek's YarnRotaryEmbedding): frequencies that
// turn fewer than beta_slow times over the pretraining context are interpolated (divided by
// factor), those turning more than beta_fast times are kept, with a linear ramp between.
torch::Tensor yarn_inv_freq(const torch::Tensor& extrapolated, int64_t dim, double base, const RopeScaling& rs) {
  const double orig = static_cast<double>(rs.original_max_position_embeddings);
  auto correction_dim = [&](double rotations) {
    return (dim * std::log(orig / (rotations * 2 * M_PI))) / (2 * std::log(base));
  };
  double low = correction_dim(rs.beta_fast), high = correction_dim(rs.beta_slow);
  if (rs.truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // avoid a zero-width ramp
  auto ramp = ((torch::arange(dim / 2, torch::kFloat64) - low) / (high - low)).clamp(0, 1);
  auto interpolated = extrapolated / rs.factor;
  return interpolated * ramp + extrapolated * (1 - ramp);
}

}  // namespace rope_detail

RotaryEmbedding::RotaryEmbedding(const TransformerConfig& cfg) {
  const int64_t d = cfg.head_dim;
  auto inv = 1.0 / torch::pow(cfg.rope_theta, torch::arange(0, d, 2, torch::kFloat64) / static_cast<double>(d));
  const auto& rs = cfg.rope_scaling;
  if (rs.type == "linear") {
    inv = inv / rs.factor;
  } else if (rs.type == "llama3") {
    // Llama 3.1: long wavelengths are divided by `factor`, short ones kept, the band between blended.
    const double old_len = static_cast<double>(rs.original_max_position_embeddings);
    const double low_wavelen = old_len / rs.low_freq_factor;
    const double high_wavelen = old_len / rs.high_freq_factor;
    auto wavelen = 2 * M_PI / inv;
    auto scaled = torch::where(wavelen > low_wavelen, inv / rs.factor, inv);
    auto smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    auto blended = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv = torch::where(medium, blended, scaled);
  } else if (rs.type == "yarn") {
    inv = rope_detail::yarn_inv_freq(inv, d, cfg.rope_theta, rs);
    attention_scaling_ = rs.attention_factor;
  }
  inv_freq_ = inv.to(torch::kFloat32);
}

std::pair<torch::Tensor, torch::Tensor> RotaryEmbedding::tables(const torch::Tensor& position_ids) const {
  auto inv = inv_freq_.to(position_ids.device());
  auto freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv;  // [B, T, D/2]
  auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);              // [B, 1, T, D]
  if (attention_scaling_ == 1.0) return {emb.cos(), emb.sin()};
  return {emb.cos() * attention_scaling_, emb.sin() * attention_scaling_};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);  // rotate_half
  return (x * cos.to(x.scalar_type())) + (rotated * sin.to(x.scalar_type()));
}

torch::Tensor attention_mask(const torch::Tensor& doc_ids, int64_t seq_len, std::optional<int64_t> sliding_window,
                             torch::Device device) {
  auto idx = torch::arange(seq_len, torch::TensorOptions().dtype(torch::kInt64).device(device));
  auto q = idx.unsqueeze(1), k = idx.unsqueeze(0);
  auto allowed = k <= q;                                              // [T, T] causal
  if (sliding_window) allowed = allowed.logical_and((q - k) < *sliding_window);
  allowed = allowed.unsqueeze(0).unsqueeze(0);                        // [1, 1, T, T]
  if (doc_ids.defined()) {
    auto same = doc_ids.unsqueeze(2) == doc_ids.unsqueeze(1);         // [B, T, T]
    allowed = allowed.logical_and(same.unsqueeze(1));                 // [B, 1, T, T]
  }
  return allowed;
}

torch::Tensor attention_mask_after(const torch::Tensor& q_doc, const torch::Tensor& k_doc,
                                   std::optional<int64_t> sliding_window) {
  const int64_t tq = q_doc.size(1), tk = k_doc.size(1), past = tk - tq;
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(q_doc.device());
  auto q = (torch::arange(tq, opts) + past).unsqueeze(1), k = torch::arange(tk, opts).unsqueeze(0);
  auto allowed = k <= q;                                                   // [Tq, Tk]
  if (sliding_window) allowed = allowed.logical_and((q - k) < *sliding_window);
  auto same = q_doc.unsqueeze(2) == k_doc.unsqueeze(1);                     // [B, Tq, Tk]
  return allowed.unsqueeze(0).logical_and(same).unsqueeze(1);              // [B, 1, Tq, Tk]
}

std::pair<torch::Tensor, torch::Tensor> KvLayer::append(const torch::Tensor& k_new, const torch::Tensor& v_new) {
  k = k.defined() ? torch::cat({k, k_new}, 2) : k_new;
  v = v.defined() ? torch::cat({v, v_new}, 2) : v_new;
  return {k, v};
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps, bool tp_partial) : eps_(eps), tp_partial_(tp_partial) {
  weight = register_parameter("weight", torch::ones({dim}));
}

std::vector<std::pair<std::string, parallel::TpShard>> RMSNormImpl::tp_shards() const {
  if (!tp_partial_) return {};
  parallel::TpShard s;
  s.partial_grad = true;
  return {{"weight", s}};
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * h.to(x.scalar_type());
}

MlpImpl::MlpImpl(const TransformerConfig& c, const parallel::ModelParallel& mp)
    : MlpImpl(c.hidden_size, c.intermediate_size, c.mlp_bias, false, mp) {}

MlpImpl::MlpImpl(int64_t hidden, int64_t intermediate, bool bias, bool w123, const parallel::ModelParallel& mp,
                 bool collective) {
  // One copy_to_tp for gate and up (they read the same input), done here rather than in each.
  const auto col = TpLinear::column(mp, /*collective=*/false);
  gate_proj = register_module(w123 ? "w1" : "gate_proj", Linear(hidden, intermediate, bias, col));
  up_proj = register_module(w123 ? "w3" : "up_proj", Linear(hidden, intermediate, bias, col));
  down_proj = register_module(w123 ? "w2" : "down_proj", Linear(intermediate, hidden, bias, TpLinear::row(mp, collective)));
  if (collective && mp.tp_size() > 1) copy_tp_ = mp.tp;
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  auto in = copy_tp_ ? parallel::copy_to_tp(x, copy_tp_) : x;
  return down_proj(torch::silu(gate_proj(in)) * up_proj(in));
}

}  // namespace distillery
