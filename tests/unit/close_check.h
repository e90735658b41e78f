// Numeric comparison for tests that run in float64 to be independent of the CPU's BLAS kernels.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace distillery::testing {

// max |a - b| <= rel * max |b|. Meant for comparisons run in float64, whose only remaining
// differences are the fp32 roundings the model does on purpose (RMSNorm and the attention softmax
// compute in fp32, the router's logits are fp32, RoutedExperts accumulates the weighted expert
// outputs in fp32 as DeepSeek does, rotary tables are fp32). Each such rounding is <= 2^-24 (6e-8)
// of the value rounded and only a handful reach any output, so 1e-5 of the largest value leaves a
// margin of > 50x; every matmul runs in float64, so the BLAS kernel and summation order the CPU
// selects contribute ~1e-16. Relative to the largest value rather than per element, so an output
// that cancels to near zero is not held to a tolerance below the rounding of its terms.
inline ::testing::AssertionResult close_rel(const torch::Tensor& a, const torch::Tensor& b, double rel = 1e-5) {
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shapes " << a.sizes() << " vs " << b.sizes();
  const double err = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
  const double scale = b.abs().max().item<double>();
  if (err <= rel * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |a - b| = " << err << " > " << rel << " * max |b| = " << rel * scale;
}

}  // namespace distillery::testing
