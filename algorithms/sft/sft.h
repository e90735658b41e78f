// Supervised fine-tuning: next-token cross-entropy on the labelled tokens of packed rows.
#pragma once

#include <memory>

#include "algorithms/algorithm.h"
#include "trainer/recipe.h"

namespace distillery {

class Sft final : public Algorithm {
 public:
  // dp_rank/dp_size: this rank's share of every step's rows.
  Sft(const RecipeConfig& cfg, int64_t vocab_size, int dp_rank, int dp_size);
  StepData next_step() override;
  torch::Tensor loss(CausalLM& model, const MicroBatch& mb, int64_t global_targets,
                     std::map<std::string, double>& metrics) override;
  std::optional<EvalSums> evaluate(CausalLM& model) override;
  void end_step(CausalLM& model, parallel::Communicator& dp) override;
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& state) override;
  std::string describe() const override;

 private:
  RecipeConfig cfg_;
  int dp_rank_, dp_size_;
  ExampleStore train_, eval_;
  std::unique_ptr<RowStream> stream_;
  std::vector<PackedRow> eval_rows_;
  int64_t step_tokens_ = 0;  // real tokens of the current step (all ranks): the MoE losses' normalizer
  torch::Tensor step_counts_;  // [L, E] tokens per expert this step on this rank (correction-bias update)
};

// Summed cross-entropy of a packed micro-batch's targets (no normalization). MoE models report
// their routing to `router` when given.
torch::Tensor sft_loss_sum(CausalLM& model, const MicroBatch& mb, int64_t chunk_tokens, RouterStats* router = nullptr);

}  // namespace distillery
