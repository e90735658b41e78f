// The registry and the Algorithm interface from outside algorithms/: an algorithm registered here
// (as algorithms/<name>/<name>_registration.cpp would) gets its own recipe section with keys,
// defaults, validation, --dump-config and recipe-keys, and the loop runs it with its own micro-batch
// type, its named metrics and its evaluation sums.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "tests/unit/test_util.h"
#include "tests/unit/tiny_run.h"
#include "models/lm_head.h"
#include "trainer/algorithm_registry.h"
#include "trainer/loop.h"
#include "trainer/recipe.h"

using namespace distillery;
using distillery::testing::TempDir;

namespace algorithm_registry_test {
namespace {

struct ToySection {
  int64_t rows = 2;
  double weight = 1.0;
  template <class V>
  void visit(V& v) {
    using namespace config;
    v("rows", rows, "rows per micro-batch", ge(1));
    v("weight", weight, "loss weight", gt(0));
  }
};

// Random token rows as its micro-batch type; the loss is a weighted per-token cross-entropy mean.
struct ToyBatch {
  torch::Tensor ids;  // [rows, 8]
};

class Toy final : public BatchedAlgorithm<ToyBatch> {
 public:
  explicit Toy(AlgorithmContext& ctx)
      : model_(ctx.policy), section_(ctx.recipe.algorithm_section<ToySection>("toy")),
        accum_(ctx.recipe.trainer.grad_accum_steps), adapters_(ctx.adapters),
        reference_(ctx.load_frozen_model({ctx.recipe.model.path, "", true})) {
    for (auto& p : reference_->parameters()) frozen_ &= !p.requires_grad();
    frozen_ &= !reference_->is_training();
  }
  std::optional<MetricSums> evaluate() override {
    MetricSums s;
    s.add("score", 3);
    s.add("score_count", 2);
    s.add("total", 7);
    return s;
  }
  nlohmann::json state() const override { return {{"drawn", drawn_}}; }
  void load_state(const nlohmann::json& s) override { drawn_ = s.at("drawn").get<int64_t>(); }
  nlohmann::json data_order() const override { return {{"toy.rows", section_.rows}}; }
  std::string describe() const override { return "toy"; }
  bool adapters() const { return adapters_; }

 protected:
  Step make_step() override {
    Step s;
    for (int64_t m = 0; m < accum_; ++m) {
      auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(100 + drawn_++));
      s.micro.push_back({torch::randint(0, 256, {section_.rows, 8}, gen, torch::kInt64)});
    }
    s.global_tokens = s.global_targets = accum_ * section_.rows * 7;
    return s;
  }
  torch::Tensor loss(const ToyBatch& b, int64_t global_targets, MetricSums& metrics) override {
    auto hidden = model_->forward({b.ids.narrow(1, 0, 7)});
    auto [h, t] = select_targets(hidden, b.ids.narrow(1, 1, 7));
    metrics.add("toy_rows", static_cast<double>(b.ids.size(0)));
    metrics.add("frozen", frozen_ ? 1 : 0);
    {
      torch::NoGradGuard no_grad;  // the reference model's share of the same loss
      auto [rh, rt] = select_targets(reference_->forward({b.ids.narrow(1, 0, 7)}), b.ids.narrow(1, 1, 7));
      metrics.add("reference_loss", reference_->cross_entropy_sum(rh, rt, 16).item<double>() / global_targets);
    }
    return section_.weight * model_->cross_entropy_sum(h, t, 16) / static_cast<double>(global_targets);
  }

 private:
  CausalLM model_;
  const ToySection& section_;
  int64_t accum_;
  bool adapters_;
  CausalLM reference_;
  bool frozen_ = true;
  int64_t drawn_ = 0;
};

void register_toy() {
  static const bool once = [] {
    AlgorithmSpec spec;
    spec.name = "toy";
    spec.doc = "a test algorithm";
    spec.make_section = [] { return std::make_unique<SectionOf<ToySection>>(); };
    spec.validate = [](const RecipeConfig& cfg, const std::string& origin, std::vector<std::string>& errors) {
      if (cfg.algorithm == "toy" && cfg.algorithm_section<ToySection>("toy").rows > cfg.data.max_seq_len)
        errors.push_back(origin + ": toy.rows exceeds data.max_seq_len");
    };
    spec.make = [](AlgorithmContext& ctx) -> std::unique_ptr<Algorithm> { return std::make_unique<Toy>(ctx); };
    AlgorithmRegistry::instance().add(std::move(spec));
    return true;
  }();
  (void)once;
}

// The required keys, so a recipe text only needs what a test is about.
const std::string kBase = "model: {path: m}\ndata: {train: t.jsonl}\ntrainer: {output_dir: o, max_steps: 1}\n";

std::string error_of(const std::string& yaml) {
  try {
    parse_recipe(kBase + yaml, "r.yaml");
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(AlgorithmRegistry, SftIsRegisteredAndNamesAreUnique) {
  EXPECT_NE(AlgorithmRegistry::instance().find("sft"), nullptr);
  AlgorithmSpec again;
  again.name = "sft";
  again.make = [](AlgorithmContext&) -> std::unique_ptr<Algorithm> { return nullptr; };
  EXPECT_THROW(AlgorithmRegistry::instance().add(again), std::logic_error);
}

TEST(AlgorithmRegistry, AnAlgorithmsSectionIsARecipeSection) {
  register_toy();
  auto cfg = parse_recipe(kBase + "algorithm: toy\ntoy:\n  rows: 3\n", "r.yaml", {"toy.weight=0.5"});
  EXPECT_EQ(cfg.algorithm, "toy");
  EXPECT_EQ(cfg.algorithm_section<ToySection>("toy").rows, 3);
  EXPECT_EQ(cfg.algorithm_section<ToySection>("toy").weight, 0.5);
  RecipeConfig copy = cfg;  // sections are deep-copied with the recipe
  copy.algorithm_section<ToySection>("toy").rows = 9;
  EXPECT_EQ(cfg.algorithm_section<ToySection>("toy").rows, 3);
  EXPECT_NE(dump_recipe(cfg).find("toy:\n  rows: 3\n  weight: 0.5"), std::string::npos) << dump_recipe(cfg);
  EXPECT_NE(recipe_reference().find("toy.rows  (default 2; >= 1)"), std::string::npos) << recipe_reference();
  EXPECT_NE(error_of("algorithm: toy\ntoy:\n  rowz: 3\n").find("toy.rowz"), std::string::npos);
  EXPECT_NE(error_of("toy:\n  weight: 0\n").find("toy.weight"), std::string::npos);
  EXPECT_NE(error_of("algorithm: toy\ntoy:\n  rows: 4096\n").find("r.yaml: toy.rows exceeds data.max_seq_len"),
            std::string::npos);
  const std::string unknown = error_of("algorithm: grpoo\n");
  EXPECT_NE(unknown.find("algorithm"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("sft"), std::string::npos) << unknown;
}

TEST(AlgorithmRegistry, TheLoopRunsARegisteredAlgorithmWithItsOwnBatchesMetricsAndEvaluation) {
  register_toy();
  TempDir dir;
  distillery::testing::write_tiny_sft_inputs(dir.str());
  RecipeConfig cfg = distillery::testing::tiny_sft_recipe(dir.str(), "toy-run");
  cfg.algorithm = "toy";
  cfg.algorithm_section<ToySection>("toy").rows = 3;
  cfg.trainer.max_steps = 3;
  cfg.trainer.eval_every = 3;
  cfg.data.eval = cfg.data.train;
  Trainer(cfg, std::make_shared<parallel::LocalCommunicator>()).run();
  auto loss = distillery::testing::metric_column(cfg.trainer.output_dir, "loss");
  ASSERT_EQ(loss.size(), 3u);
  for (double l : loss) EXPECT_TRUE(std::isfinite(l) && l > 0);
  // Named metrics are summed over micro-batches (2 of 3 rows); evaluation sums become eval_<name>.
  EXPECT_EQ(distillery::testing::metric_column(cfg.trainer.output_dir, "toy_rows"), std::vector<double>(3, 6.0));
  std::ifstream in(cfg.trainer.output_dir + "/metrics.jsonl");
  std::string line, last;
  while (std::getline(in, line)) last = line;
  auto rec = nlohmann::json::parse(last);
  EXPECT_EQ(rec["eval_score"].get<double>(), 1.5);
  EXPECT_EQ(rec["eval_total"].get<double>(), 7.0);
  EXPECT_FALSE(rec.contains("eval_score_count"));
  // A frozen model from the context: no gradients, eval mode, and before the first update it is the
  // policy, so its loss is the step's loss.
  EXPECT_EQ(distillery::testing::metric_column(cfg.trainer.output_dir, "frozen"), std::vector<double>(3, 2.0));
  const auto reference = distillery::testing::metric_column(cfg.trainer.output_dir, "reference_loss");
  EXPECT_NEAR(reference[0], loss[0], 1e-6 * loss[0]);
  EXPECT_GT(std::abs(reference[2] - loss[2]), 0) << "the policy was updated, the frozen model not";
}

}  // namespace algorithm_registry_test
