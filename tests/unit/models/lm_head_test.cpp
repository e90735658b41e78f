#include <gtest/gtest.h>

#include "models/lm_head.h"

using namespace distillery;

TEST(FusedLinearCrossEntropy, MatchesUnchunkedLossAndGradients) {
  torch::manual_seed(0);
  auto h = torch::randn({37, 16}, torch::requires_grad());
  auto w = torch::randn({50, 16}, torch::requires_grad());
  auto t = torch::randint(0, 50, {37}, torch::kInt64);
  auto fused = fused_linear_cross_entropy_sum(h, w, t, /*chunk_tokens=*/8);
  (fused * 0.5).backward();
  auto gh = h.grad().clone(), gw = w.grad().clone();
  h.mutable_grad().zero_();
  w.mutable_grad().zero_();
  auto ref = torch::nn::functional::cross_entropy(
      torch::matmul(h, w.t()), t, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  (ref * 0.5).backward();
  EXPECT_NEAR(fused.item<float>(), ref.item<float>(), 1e-3);
  EXPECT_TRUE(torch::allclose(gh, h.grad(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(gw, w.grad(), 1e-5, 1e-5));
}

TEST(FusedLinearCrossEntropy, NoGradPathGivesTheSameValue) {
  torch::manual_seed(1);
  auto h = torch::randn({10, 8}), w = torch::randn({20, 8});
  auto t = torch::randint(0, 20, {10}, torch::kInt64);
  torch::Tensor a;
  {
    torch::NoGradGuard g;
    a = fused_linear_cross_entropy_sum(h, w, t, 3);
  }
  auto b = fused_linear_cross_entropy_sum(h, w, t, 4);
  EXPECT_NEAR(a.item<float>(), b.item<float>(), 1e-4);
}

TEST(SelectTargets, KeepsOnlyLabelledPositions) {
  auto h = torch::arange(12, torch::kFloat32).view({1, 4, 3});
  auto t = torch::tensor({{-100, 5, -100, 7}}, torch::kInt64);
  auto [hs, ts] = select_targets(h, t);
  EXPECT_TRUE(torch::equal(ts, torch::tensor({5, 7}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(hs, torch::tensor({{3.f, 4.f, 5.f}, {9.f, 10.f, 11.f}})));
}
