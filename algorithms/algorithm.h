// What distinguishes SFT, distillation and GRPO: how an optimizer step's batches are made, and
// what the loss of a micro-batch is. The trainer loop (trainer/loop.h) owns everything else.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/packing.h"
#include "parallel/communicator.h"
#include "trainer/transformer.h"

namespace distillery {

// This rank's micro-batches for one optimizer step, and the step-wide normalizer.
struct StepData {
  std::vector<MicroBatch> micro;
  int64_t global_targets = 0;  // target tokens in the whole step, all micro-batches, all dp ranks
  int64_t global_tokens = 0;   // non-padding tokens in the whole step, all ranks
};

// Sums over this rank's share of the held-out set; the trainer reduces them over dp ranks.
struct EvalSums {
  double loss_sum = 0;
  int64_t targets = 0;
};

class Algorithm {
 public:
  virtual ~Algorithm() = default;
  virtual StepData next_step() = 0;
  // The micro-batch's loss divided by `global_targets` (so summing over micro-batches and ranks
  // gives the step's mean). Named metrics summed the same way go to `metrics`.
  virtual torch::Tensor loss(CausalLM& model, const MicroBatch& mb, int64_t global_targets,
                             std::map<std::string, double>& metrics) = 0;
  virtual std::optional<EvalSums> evaluate(CausalLM& model) = 0;
  // After the optimizer step (every rank, collectively over `dp`): updates that are not gradient
  // steps, e.g. DeepSeek's router correction bias.
  virtual void end_step(CausalLM& model, parallel::Communicator& dp) {
    (void)model;
    (void)dp;
  }
  // Position in the data (and any algorithm state), saved in checkpoints.
  virtual nlohmann::json state() const = 0;
  virtual void load_state(const nlohmann::json& state) = 0;
  // One line for the log: what the data looks like.
  virtual std::string describe() const = 0;
};

}  // namespace distillery
