#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "data/synthetic.h"
#include "tests/unit/test_util.h"
#include "tests/unit/tiny_run.h"
#include "trainer/checkpoint.h"
#include "common/fs_util.h"
#include "models/hf_model.h"
#include "trainer/loop.h"
#include "trainer/signals.h"

using namespace distillery;
using distillery::testing::TempDir;
using distillery::testing::tiny_config;
namespace fs = std::filesystem;

namespace {

RecipeConfig make_run(const TempDir& dir, const std::string& run_name) {
  if (!fs::exists(dir / "model")) distillery::testing::write_tiny_sft_inputs(dir.str());
  return distillery::testing::tiny_sft_recipe(dir.str(), run_name);
}

std::vector<double> losses(const std::string& run_dir) { return distillery::testing::metric_column(run_dir); }

TrainResult train(const RecipeConfig& cfg) {
  Trainer t(cfg, std::make_shared<parallel::LocalCommunicator>());
  return t.run();
}

}  // namespace

TEST(Trainer, WritesRunDirectoryAndLossFalls) {
  TempDir dir;
  auto cfg = make_run(dir, "run");
  cfg.trainer.max_steps = 30;
  cfg.optim.lr = 1e-2;
  train(cfg);
  auto l = losses(cfg.trainer.output_dir);
  ASSERT_EQ(l.size(), 30u);
  EXPECT_LT(l.back(), l.front() * 0.6);
  EXPECT_TRUE(fs::exists(cfg.trainer.output_dir + "/config.yaml"));
  EXPECT_TRUE(fs::exists(cfg.trainer.output_dir + "/final/model.safetensors"));
  std::ifstream in(cfg.trainer.output_dir + "/metrics.jsonl");
  std::string first;
  std::getline(in, first);
  auto rec = nlohmann::json::parse(first);
  for (const char* k : {"step", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"})
    EXPECT_TRUE(rec.contains(k)) << k;
}

TEST(Trainer, MicroBatchSplitDoesNotChangeTheRun) {
  TempDir dir;
  auto a = make_run(dir, "a");  // 2 x 2
  auto b = make_run(dir, "b");
  b.trainer.micro_batch_size = 4, b.trainer.grad_accum_steps = 1;
  auto c = make_run(dir, "c");
  c.trainer.micro_batch_size = 1, c.trainer.grad_accum_steps = 4;
  train(a), train(b), train(c);
  auto la = losses(a.trainer.output_dir), lb = losses(b.trainer.output_dir), lc = losses(c.trainer.output_dir);
  ASSERT_EQ(la.size(), 6u);
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_NEAR(la[i], lb[i], 1e-5) << "step " << i + 1;
    EXPECT_NEAR(la[i], lc[i], 1e-5) << "step " << i + 1;
  }
  auto wa = load_hf_model(a.trainer.output_dir + "/final"), wc = load_hf_model(c.trainer.output_dir + "/final");
  EXPECT_TRUE(torch::allclose(wa->model->norm->weight, wc->model->norm->weight, 1e-5, 1e-6));
}

TEST(Trainer, ResumedRunMatchesUninterruptedExactly) {
  TempDir dir;
  auto full = make_run(dir, "full");
  full.trainer.save_every = 3;
  full.trainer.keep_last = 5;
  train(full);
  // A second run that only has the step-3 checkpoint, as if it had died after writing it.
  auto resumed = make_run(dir, "resumed");
  resumed.trainer.resume = "auto";
  fs::create_directories(resumed.trainer.output_dir + "/checkpoints");
  fs::copy(full.trainer.output_dir + "/checkpoints/step-3", resumed.trainer.output_dir + "/checkpoints/step-3",
           fs::copy_options::recursive);
  // A half-written checkpoint from the crash must be ignored.
  fs::create_directories(resumed.trainer.output_dir + "/checkpoints/.tmp-step-4");
  train(resumed);
  auto lf = losses(full.trainer.output_dir), lr = losses(resumed.trainer.output_dir);
  ASSERT_EQ(lr.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(lf[3 + i], lr[i]) << "step " << 4 + i;
  auto a = load_hf_model(full.trainer.output_dir + "/final"), b = load_hf_model(resumed.trainer.output_dir + "/final");
  for (size_t i = 0; i < a->parameters().size(); ++i) EXPECT_TRUE(torch::equal(a->parameters()[i], b->parameters()[i]));
}

TEST(Trainer, StopRequestCheckpointsAndResumeFinishesTheRun) {
  TempDir dir;
  auto cfg = make_run(dir, "stopped");
  cfg.optim.lr_schedule = "constant";  // so a run's losses do not depend on its max_steps
  cfg.trainer.max_steps = 100000;
  cfg.trainer.resume = "auto";
  // As SIGTERM would, once training has begun: finish the step in progress, checkpoint, return.
  std::atomic<bool> finished{false};
  std::thread signal([&] {
    while (!finished) {
      std::ifstream in(cfg.trainer.output_dir + "/metrics.jsonl");
      std::string line;
      if (std::getline(in, line)) return request_stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  auto r = train(cfg);
  finished = true;
  signal.join();
  reset_stop_request();
  EXPECT_TRUE(r.stopped_by_signal);
  const int64_t k = r.steps_done;
  ASSERT_LT(k, 1000);
  EXPECT_EQ(latest_checkpoint(cfg.trainer.output_dir), cfg.trainer.output_dir + "/checkpoints/step-" + std::to_string(k));
  EXPECT_FALSE(fs::exists(cfg.trainer.output_dir + "/final"));
  cfg.trainer.max_steps = k + 3;
  train(cfg);
  auto full = make_run(dir, "full");
  full.optim.lr_schedule = "constant";
  full.trainer.max_steps = k + 3;
  train(full);
  auto lf = losses(full.trainer.output_dir), ls = losses(cfg.trainer.output_dir);
  ASSERT_EQ(ls.size(), lf.size());
  for (size_t i = 0; i < lf.size(); ++i) EXPECT_EQ(lf[i], ls[i]) << "step " << i + 1;
}

// A stop request during start-up (model load, data) ends the run before it trains or writes
// anything, with an error rather than a silent exit.
TEST(Trainer, StopRequestBeforeTheFirstStepEndsTheRunWithoutAnything) {
  TempDir dir;
  auto cfg = make_run(dir, "early");
  request_stop();
  try {
    train(cfg);
    ADD_FAILURE() << "the run trained";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "stop requested (SIGTERM, SIGINT or SIGUSR1) while loading the model: nothing was trained and no "
                           "checkpoint was written");
  }
  reset_stop_request();
  EXPECT_FALSE(latest_checkpoint(cfg.trainer.output_dir).has_value());
  EXPECT_FALSE(fs::exists(cfg.trainer.output_dir + "/final"));
  EXPECT_FALSE(fs::exists(cfg.trainer.output_dir + "/metrics.jsonl"));
}

// Resuming with another global batch or data order is refused, listing each change, unless
// trainer.resume_accept_changes says it is meant.
TEST(Trainer, ResumeWithAChangedBatchIsRefusedUnlessAccepted) {
  TempDir dir;
  auto cfg = make_run(dir, "run");
  cfg.trainer.max_steps = 2;
  cfg.trainer.save_every = 1;
  train(cfg);  // step-1 is kept (step 2 is the final one)
  auto changed = cfg;
  changed.trainer.resume = "auto";
  changed.trainer.max_steps = 4;
  changed.trainer.micro_batch_size = 3;
  changed.trainer.grad_accum_steps = 1;
  try {
    train(changed);
    ADD_FAILURE() << "resumed with a changed batch";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "resuming " + cfg.trainer.output_dir +
                                         "/checkpoints/step-1 with a changed data order or global batch: "
                                         "global batch rows (micro_batch_size x grad_accum_steps x data-parallel "
                                         "ranks) 4 (2x2x1) -> 3 (3x1x1); set "
                                         "trainer.resume_accept_changes=true to continue anyway, or trainer.resume=none "
                                         "to start over");
  }
  changed.trainer.resume_accept_changes = true;
  EXPECT_EQ(train(changed).steps_done, 4);
}

TEST(Trainer, KeepsOnlyTheLastCheckpoints) {
  TempDir dir;
  auto cfg = make_run(dir, "run");
  cfg.trainer.save_every = 1;
  cfg.trainer.keep_last = 2;
  train(cfg);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(cfg.trainer.output_dir + "/checkpoints"))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"step-4", "step-5"}));
  // A checkpoint is a loadable Hugging Face model dir.
  EXPECT_NO_THROW(load_hf_model(cfg.trainer.output_dir + "/checkpoints/step-5"));
}
