#include <gtest/gtest.h>

#include <cmath>

#include "trainer/optim.h"

using namespace distillery;

TEST(LrSchedule, WarmupThenCosineToMinimum) {
  OptimConfig c;
  c.lr = 1.0;
  c.warmup_steps = 4;
  c.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(lr_at(c, 0, 14), 0.25);
  EXPECT_DOUBLE_EQ(lr_at(c, 3, 14), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(c, 4, 14), 1.0);                       // decay starts at the peak
  EXPECT_NEAR(lr_at(c, 9, 14), 0.1 + 0.9 * 0.5, 1e-12);         // half way: cos(pi/2)
  EXPECT_NEAR(lr_at(c, 14, 14), 0.1, 1e-12);
}

TEST(LrSchedule, LinearAndConstant) {
  OptimConfig c;
  c.lr = 2.0;
  c.lr_schedule = "linear";
  EXPECT_DOUBLE_EQ(lr_at(c, 5, 10), 1.0);
  c.lr_schedule = "constant";
  EXPECT_DOUBLE_EQ(lr_at(c, 9, 10), 2.0);
}

TEST(AdamW, MatchesPyTorchAdamWGolden) {
  // torch.optim.AdamW(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), PyTorch 1.13:
  // p = [1, -2], grads [0.5, 0.25] then [-1, 2]  ->  p after two steps.
  OptimConfig c;
  c.weight_decay = 0.01;
  auto p = torch::tensor({{1.0f, -2.0f}}, torch::requires_grad());
  AdamW opt({{"w.weight", p}}, c);
  p.mutable_grad() = torch::tensor({{0.5f, 0.25f}});
  opt.step(0.1);
  p.mutable_grad() = torch::tensor({{-1.0f, 2.0f}});
  opt.step(0.1);
  EXPECT_NEAR(p[0][0].item<float>(), 0.93471140f, 1e-6);
  EXPECT_NEAR(p[0][1].item<float>(), -2.17804861f, 1e-6);
}

TEST(AdamW, NoDecayForNormsBiasesAndVectors) {
  EXPECT_FALSE(default_weight_decay("model.norm.weight", torch::ones({4})));
  EXPECT_FALSE(default_weight_decay("model.layers.0.self_attn.q_proj.bias", torch::ones({4})));
  EXPECT_TRUE(default_weight_decay("model.layers.0.self_attn.q_proj.weight", torch::ones({4, 4})));
}

TEST(AdamW, Bf16ParametersStepThroughFp32Masters) {
  OptimConfig c;
  auto p = torch::ones({2, 2}, torch::kBFloat16).set_requires_grad(true);
  AdamW opt({{"w", p}}, c);
  ASSERT_TRUE(opt.slots()[0].master.defined());
  for (int i = 0; i < 3; ++i) {
    p.mutable_grad() = torch::full({2, 2}, 1.0, torch::kBFloat16);
    opt.step(1e-3);
  }
  // bf16 alone cannot represent 1 - 3e-3; the master holds it.
  EXPECT_NEAR(opt.slots()[0].master[0][0].item<float>(), 1.0 - 3e-3, 1e-6);
  EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
}

TEST(ClipGradNorm, ReportsNormAndClips) {
  auto a = torch::zeros({2}, torch::requires_grad()), b = torch::zeros({1}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6f, 1e-5);
  EXPECT_NEAR(b.grad()[0].item<float>(), 0.8f, 1e-5);
}
