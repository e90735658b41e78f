// Mixture-of-experts balancing, applied by the loop to every algorithm: the router's auxiliary
// losses (Switch load balancing, ST-MoE z-loss; models/moe_losses.h) join each micro-batch's loss,
// the routing statistics go to metrics, and DeepSeek-V3's correction bias moves after each step.
// The recipe's `moe:` section sets the coefficients (docs/moe.md). A no-op for dense models.
#pragma once

#include <deque>

#include "models/moe_section.h"
#include "models/transformer.h"
#include "parallel/communicator.h"
#include "trainer/metric_sums.h"

namespace distillery {

class MoeBalancing {
 public:
  MoeBalancing(const MoeSection& cfg, CausalLM model);
  ~MoeBalancing();
  MoeBalancing(const MoeBalancing&) = delete;
  MoeBalancing& operator=(const MoeBalancing&) = delete;
  bool active() const { return active_; }

  // Before a micro-batch: the policy's training forwards (grad mode on) record their routing until
  // finish_micro_batch. Forwards under no_grad (rollouts, reference passes, evaluation) do not.
  void begin_micro_batch();
  // `loss` (the algorithm's share of the step's loss) plus the router losses' shares, with their
  // coefficients: aux and z are per-token means over the whole step, whose real tokens are
  // `step_tokens` (all micro-batches, all ranks). Adds moe_aux_loss, moe_z_loss and the load
  // statistics to `metrics`. Returns `loss` unchanged when inactive or nothing was recorded.
  torch::Tensor finish_micro_batch(torch::Tensor loss, int64_t step_tokens, MetricSums& metrics);
  // After the optimizer step (collective over dp: every dp rank routed its own tokens): moves
  // gate.e_score_correction_bias by moe.bias_update_rate towards balance. No-op for rate 0.
  void end_step(parallel::Communicator& dp);

 private:
  MoeSection cfg_;
  CausalLM model_;
  bool active_;
  std::deque<RouterStats> recorded_;  // this micro-batch's training forwards
  torch::Tensor step_counts_;         // [L, E] tokens per expert this step on this rank
};

}  // namespace distillery
