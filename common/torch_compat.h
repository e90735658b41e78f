// The one place where LibTorch 1.13 (Debian, CPU) and 2.x (CUDA builds) differ for distillery.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#define DISTILLERY_TORCH_2 (TORCH_VERSION_MAJOR >= 2)

namespace distillery::compat {

// softmax(q k^T * scale + mask) v for q [B, H, T, D], k/v [B, H, S, D], `allowed` [B, 1, T, S] bool.
// On LibTorch 2.x this is the fused scaled_dot_product_attention; on 1.13 the same math spelled out.
inline torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& allowed, double scale) {
#if DISTILLERY_TORCH_2
  return at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, scale);
#else
  auto scores = torch::matmul(q, k.transpose(-2, -1)) * scale;                      // [B, H, T, S]
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  return torch::matmul(probs, v);                                                    // [B, H, T, D]
#endif
}

}  // namespace distillery::compat
