// What distinguishes SFT, GRPO and distillation: how an optimizer step's micro-batches are made and
// what a micro-batch's loss is. The loop (trainer/loop.h) owns everything else: accumulation,
// gradient reduction, clipping, the optimizer, MoE balancing, evaluation, checkpoints and metrics.
//
// An algorithm is built once per run from an AlgorithmContext (the policy model, the mesh, and a
// loader for further frozen models) by the factory it registered (trainer/algorithm_registry.h).
// Each step the loop calls
//   prepare_step()           -> StepPlan: how many micro-batches this rank runs, and the step's size
//   micro_batch_loss(i, ...) -> the i-th micro-batch's share of the step's loss (backward by the loop)
//   end_step()               after the optimizer step (e.g. GRPO's old-policy refresh)
// Algorithms keep their micro-batches in their own type (BatchedAlgorithm<Batch> below): SFT's packed
// rows, GRPO's rows with advantages and old/reference log-probs, distillation's rows with teacher
// signals; the loop never looks inside one.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/transformer.h"
#include "parallel/mesh.h"
#include "trainer/metric_sums.h"

namespace distillery {

struct RecipeConfig;

// A further model an algorithm runs next to the policy, frozen (no gradients, eval mode): GRPO's
// reference policy, a distillation teacher.
struct FrozenModelSpec {
  std::string path;        // Hugging Face model directory
  std::string dtype;       // "float32" | "bfloat16" | "float16"; empty: the policy's (model.dtype)
  // true: sharded over the policy's tp and ep groups, like the policy (its vocabulary must then
  // split the same way); false: a whole copy on every rank.
  bool same_layout = true;
};

// What the trainer hands an algorithm's factory. References stay valid for the whole run.
struct AlgorithmContext {
  const RecipeConfig& recipe;
  CausalLM policy;               // the model being trained, with its LoRA adapters when lora is on
  const parallel::Mesh& mesh;    // dp x tp (ep inside dp); an algorithm's rows are split over mesh.dp()
  bool adapters = false;         // LoRA/DoRA adapters are attached: AdaptersDisabled(policy) (models/peft/lora.h)
                                 // gives the base model, e.g. GRPO's reference policy without a second copy
  // Loads a FrozenModelSpec (a UserError naming the directory when it cannot). Collective over the world.
  std::function<CausalLM(const FrozenModelSpec&)> load_frozen_model;
};

// What one optimizer step looks like, as the algorithm made it.
struct StepPlan {
  int64_t micro_batches = 0;   // on this rank; every dp rank runs the same number
  int64_t global_tokens = 0;   // non-padding tokens in the whole step, all ranks (tokens/s, MoE losses' normalizer)
  int64_t global_targets = 0;  // tokens that carry loss in the whole step, all ranks
};

class Algorithm {
 public:
  virtual ~Algorithm() = default;
  // Makes this step's micro-batches (GRPO: samples and scores rollouts here). Collective over the
  // world when the algorithm's preparation is (generation under tp/ep).
  virtual StepPlan prepare_step() = 0;
  // The i-th micro-batch's loss share: summed over micro-batches and dp ranks it is the step's loss
  // (normalized over the global batch, so the split does not change it). Metrics go to `metrics`
  // as shares of the step's values in the same way (the loop sums them over ranks by name).
  virtual torch::Tensor micro_batch_loss(int64_t i, MetricSums& metrics) = 0;
  // After the optimizer step, on every rank.
  virtual void end_step() {}
  // Held-out evaluation: named sums over this rank's share, summed over dp by the loop, then
  // reported as "eval_<name>" = sum / sum of "<name>_count" when a count is given, else the sum.
  // nullopt: the run has no evaluation data. Called in eval mode under no_grad, on every rank.
  virtual std::optional<MetricSums> evaluate() { return std::nullopt; }
  // Position in the data and any algorithm state, saved in checkpoints and restored on resume.
  virtual nlohmann::json state() const = 0;
  virtual void load_state(const nlohmann::json& state) = 0;
  // What the data, the order of its rows and the batch size are: a resume that changes any of it is
  // refused unless trainer.resume_accept_changes (values are compared as JSON, by key).
  virtual nlohmann::json data_order() const = 0;
  // One line for the log: what the data looks like.
  virtual std::string describe() const = 0;
};

// An algorithm whose micro-batches are values of its own type `Batch`: make_step() builds a step's
// batches, loss() scores one.
template <class Batch>
class BatchedAlgorithm : public Algorithm {
 public:
  struct Step {
    std::vector<Batch> micro;  // this rank's micro-batches
    int64_t global_tokens = 0, global_targets = 0;
  };

  StepPlan prepare_step() final {
    step_ = make_step();
    return {static_cast<int64_t>(step_.micro.size()), step_.global_tokens, step_.global_targets};
  }
  torch::Tensor micro_batch_loss(int64_t i, MetricSums& metrics) final {
    return loss(step_.micro.at(static_cast<size_t>(i)), step_.global_targets, metrics);
  }

 protected:
  virtual Step make_step() = 0;
  // The batch's loss divided by the step's normalizer (global_targets for a per-token mean).
  virtual torch::Tensor loss(const Batch& batch, int64_t global_targets, MetricSums& metrics) = 0;
  const Step& current_step() const { return step_; }

 private:
  Step step_;
};

}  // namespace distillery
