// SFT as the loop sees it: a step's micro-batches are this rank's share of the global rows, each
// micro-batch's loss is its summed cross-entropy over the step's target tokens, and evaluation
// gives the summed loss with its target count.
#include <gtest/gtest.h>

#include "algorithms/sft/sft.h"
#include "models/hf_model.h"
#include "tests/unit/test_util.h"
#include "tests/unit/tiny_run.h"
#include "trainer/algorithm_registry.h"

using namespace distillery;
using distillery::testing::TempDir;

TEST(Sft, MicroBatchLossesSumToTheStepsPerTargetMean) {
  TempDir dir;
  distillery::testing::write_tiny_sft_inputs(dir.str());
  RecipeConfig cfg = distillery::testing::tiny_sft_recipe(dir.str(), "run");
  cfg.data.eval = cfg.data.train;
  auto world = std::make_shared<parallel::LocalCommunicator>();
  parallel::Mesh mesh(world, parallel::MeshConfig{1, 1});
  CausalLM model = load_hf_model(cfg.model.path);
  AlgorithmContext ctx{cfg, model, mesh, false, {}};
  auto sft = AlgorithmRegistry::instance().find("sft")->make(ctx);

  const StepPlan plan = sft->prepare_step();
  ASSERT_EQ(plan.micro_batches, cfg.trainer.grad_accum_steps);
  ASSERT_GT(plan.global_targets, 0);
  double shares = 0, sums = 0;
  MetricSums metrics;
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < plan.micro_batches; ++i) shares += sft->micro_batch_loss(i, metrics).item<double>();
  // The step's rows as the stream hands them out, scored as plain sums.
  ExampleStore store = build_examples(cfg.data, cfg.data.train, load_text_pipeline(cfg.data, cfg.model.path), 256);
  RowStream stream(store, cfg.data.max_seq_len, cfg.data.truncation, cfg.data.packing, cfg.data.shuffle,
                   static_cast<uint64_t>(cfg.trainer.seed));
  auto rows = stream.take(cfg.trainer.micro_batch_size * cfg.trainer.grad_accum_steps);
  for (int64_t m = 0; m < cfg.trainer.grad_accum_steps; ++m) {
    std::vector<PackedRow> part(rows.begin() + m * cfg.trainer.micro_batch_size,
                                rows.begin() + (m + 1) * cfg.trainer.micro_batch_size);
    sums += sft_loss_sum(model, make_packed_batch(store, part, cfg.data.max_seq_len), cfg.model.loss_chunk_tokens).item<double>();
  }
  EXPECT_NEAR(shares, sums / static_cast<double>(plan.global_targets), 1e-6 * std::abs(shares));
  EXPECT_TRUE(metrics.values().empty());  // SFT adds no metrics of its own (MoE ones come from the loop)

  auto eval = sft->evaluate();
  ASSERT_TRUE(eval.has_value());
  EXPECT_GT(eval->get("loss_count"), 0);
  EXPECT_GT(eval->get("loss") / eval->get("loss_count"), 0);
  const auto order = sft->data_order();
  EXPECT_EQ(order["data.train"], cfg.data.train);
  EXPECT_EQ(order["global batch rows (micro_batch_size x grad_accum_steps x data-parallel ranks)"]["rows"],
            cfg.trainer.micro_batch_size * cfg.trainer.grad_accum_steps);
}
