// Supervised fine-tuning: next-token cross-entropy on the labelled tokens of packed rows (the
// assistant turns of chat data, docs/chat_templates.md), as a per-target-token mean over the
// global batch.
#pragma once

#include <memory>
#include <vector>

#include "data/dataset_builder.h"
#include "data/packing.h"
#include "trainer/algorithm.h"
#include "trainer/recipe.h"

namespace distillery {

class Sft final : public BatchedAlgorithm<PackedBatch> {
 public:
  // Tokenizes data.train (and data.eval) with the policy's tokenizer; this rank takes its dp share of
  // every step's rows.
  explicit Sft(AlgorithmContext& ctx);
  std::optional<MetricSums> evaluate() override;
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& state) override;
  nlohmann::json data_order() const override;
  std::string describe() const override;

 protected:
  Step make_step() override;
  torch::Tensor loss(const PackedBatch& mb, int64_t global_targets, MetricSums& metrics) override;

 private:
  const RecipeConfig& cfg_;
  CausalLM model_;
  int dp_rank_, dp_size_;
  ExampleStore train_, eval_;
  std::unique_ptr<RowStream> stream_;
  std::vector<PackedRow> eval_rows_;
};

// Summed cross-entropy of a packed batch's targets (no normalization): [B, T] rows -> 0-dim fp32.
torch::Tensor sft_loss_sum(CausalLM& model, const PackedBatch& mb, int64_t chunk_tokens);

}  // namespace distillery
