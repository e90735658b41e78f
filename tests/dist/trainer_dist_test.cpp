// The same run on 1, 2 or 4 ranks: data parallelism (with and without ZeRO-1) gives the losses
// and final weights of one process, and resuming on N ranks, with the same or another sharding,
// continues exactly.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/unit/tiny_run.h"
#include "dist_util.h"
#include "parallel/runtime.h"
#include "models/hf_model.h"
#include "trainer/loop.h"

namespace distillery {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kDistRowsPerStep = 8;  // global batch: the same for every layout

// A directory every rank sees, with the tiny model and data, made fresh by rank 0.
std::string shared_dir(const std::string& test) {
  return dist_testing::shared_test_dir(test, [](const std::string& dir) { testing::write_tiny_sft_inputs(dir); });
}

RecipeConfig recipe_for(const std::string& dir, const std::string& name, int ranks) {
  auto cfg = testing::tiny_sft_recipe(dir, name);
  cfg.trainer.micro_batch_size = 1;
  cfg.trainer.grad_accum_steps = kDistRowsPerStep / ranks;
  return cfg;
}

// The single-process reference, computed by rank 0 alone (with a checkpoint at step 3).
void run_reference(const std::string& dir) {
  auto& rt = parallel::Runtime::get();
  auto cfg = recipe_for(dir, "reference", 1);
  cfg.trainer.save_every = 3;
  if (rt.world_rank == 0) Trainer(cfg, std::make_shared<parallel::LocalCommunicator>()).run();
  rt.world->barrier();
}

void expect_same_run(const std::string& a, const std::string& b, double tol) {
  const auto la = testing::metric_column(a), lb = testing::metric_column(b);
  ASSERT_EQ(la.size(), lb.size());
  for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], lb[i], tol) << "step " << i + 1;
  const auto ga = testing::metric_column(a, "grad_norm"), gb = testing::metric_column(b, "grad_norm");
  for (size_t i = 0; i < ga.size(); ++i) EXPECT_NEAR(ga[i], gb[i], 1e-4) << "grad_norm step " << i + 1;
  auto ma = load_hf_model(a + "/final"), mb = load_hf_model(b + "/final");
  auto pa = ma->named_parameters(), pb = mb->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(torch::allclose(pa[i].value(), pb[i].value(), 1e-4, 1e-5)) << pa[i].key();
}

TEST(DataParallelTraining, LossesAndWeightsMatchOneRank) {
  auto& rt = parallel::Runtime::get();
  const std::string dir = shared_dir("dp");
  run_reference(dir);
  Trainer(recipe_for(dir, "dp", rt.world_size), rt.world).run();
  rt.world->barrier();
  if (rt.world_rank == 0) expect_same_run(dir + "/reference", dir + "/dp", 1e-5);
}

TEST(DataParallelTraining, ZeroOneMatchesPlainDataParallel) {
  auto& rt = parallel::Runtime::get();
  const std::string dir = shared_dir("zero1");
  run_reference(dir);
  auto cfg = recipe_for(dir, "zero1", rt.world_size);
  cfg.parallel.zero_stage = 1;
  cfg.trainer.save_every = 3;
  Trainer(cfg, rt.world).run();
  rt.world->barrier();
  if (rt.world_rank == 0) {
    expect_same_run(dir + "/reference", dir + "/zero1", 1e-5);
    // Each rank saved its own optimizer shard.
    const std::string state = dir + "/zero1/checkpoints/step-3/trainer_state";
    char name[64];
    std::snprintf(name, sizeof(name), "/optimizer-%05d-of-%05d.safetensors", rt.world_size, rt.world_size);
    EXPECT_TRUE(fs::exists(state + name)) << state + name;
  }
}

TEST(DataParallelTraining, ResumeContinuesExactlyWithAnySharding) {
  auto& rt = parallel::Runtime::get();
  const std::string dir = shared_dir("resume");
  auto full = recipe_for(dir, "full", rt.world_size);
  full.parallel.zero_stage = 1;
  full.trainer.save_every = 3;
  full.trainer.keep_last = 3;
  Trainer(full, rt.world).run();
  // Two runs that have only the step-3 checkpoint (as if they had died after writing it): one
  // keeps ZeRO-1, one resumes its sharded state unsharded.
  for (int64_t zero : {1, 0}) {
    const std::string name = "resumed-zero" + std::to_string(zero);
    if (rt.world_rank == 0) {
      fs::create_directories(dir + "/" + name + "/checkpoints");
      fs::copy(dir + "/full/checkpoints/step-3", dir + "/" + name + "/checkpoints/step-3", fs::copy_options::recursive);
    }
    rt.world->barrier();
    auto resumed = recipe_for(dir, name, rt.world_size);
    resumed.parallel.zero_stage = zero;
    resumed.trainer.resume = "auto";
    Trainer(resumed, rt.world).run();
    rt.world->barrier();
    if (rt.world_rank == 0) {
      const auto lf = testing::metric_column(dir + "/full"), lr = testing::metric_column(dir + "/" + name);
      ASSERT_EQ(lr.size(), 3u);
      for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(lf[3 + i], lr[i], zero ? 0.0 : 1e-6) << name << " step " << 4 + i;
    }
  }
}

TEST(DataParallelTraining, ResumeOnMoreRanksReshardsTheOptimizer) {
  // A checkpoint written by one process continues on N ranks with ZeRO-1 (dp 1 -> N).
  auto& rt = parallel::Runtime::get();
  const std::string dir = shared_dir("regrow");
  run_reference(dir);
  if (rt.world_rank == 0) {
    fs::create_directories(dir + "/grown/checkpoints");
    fs::copy(dir + "/reference/checkpoints/step-3", dir + "/grown/checkpoints/step-3", fs::copy_options::recursive);
  }
  rt.world->barrier();
  auto grown = recipe_for(dir, "grown", rt.world_size);
  grown.parallel.zero_stage = 1;
  grown.trainer.resume = "auto";
  Trainer(grown, rt.world).run();
  rt.world->barrier();
  if (rt.world_rank == 0) {
    const auto lf = testing::metric_column(dir + "/reference"), lg = testing::metric_column(dir + "/grown");
    ASSERT_EQ(lg.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(lf[3 + i], lg[i], 1e-5) << "step " << 4 + i;
  }
}

}  // namespace
}  // namespace distillery

namespace distillery {
namespace {

TEST(DataParallelTraining, LoraWithZeroOneMatchesOneRank) {
  // Only the adapters are trainable, so only they are broadcast, reduced and sharded.
  auto& rt = parallel::Runtime::get();
  const std::string dir = shared_dir("lora");
  const auto with_lora = dist_testing::with_dora_adapters;
  if (rt.world_rank == 0)
    Trainer(with_lora(recipe_for(dir, "reference", 1)), std::make_shared<parallel::LocalCommunicator>()).run();
  rt.world->barrier();
  auto cfg = with_lora(recipe_for(dir, "dp", rt.world_size));
  cfg.parallel.zero_stage = 1;
  Trainer(cfg, rt.world).run();
  rt.world->barrier();
  if (rt.world_rank == 0) {
    const auto la = testing::metric_column(dir + "/reference"), lb = testing::metric_column(dir + "/dp");
    ASSERT_EQ(la.size(), lb.size());
    for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], lb[i], 1e-5) << "step " << i + 1;
    EXPECT_LT(la.back(), la.front());
    EXPECT_TRUE(fs::exists(dir + "/dp/final/adapter_model.safetensors"));
  }
}

}  // namespace
}  // namespace distillery
