// The one training loop: accumulation, clipping, optimizer, schedule, MoE balancing, logging, eval,
// checkpoints, resume and signals, for every registered algorithm (trainer/algorithm_registry.h).
#pragma once

#include <memory>
#include <string>

#include "parallel/communicator.h"
#include "trainer/recipe.h"

namespace distillery {

struct TrainResult {
  int64_t steps_done = 0;
  bool stopped_by_signal = false;
  double last_loss = 0;
};

class Trainer {
 public:
  // `world` carries the stop flag and the dp reduction; with a LocalCommunicator the run is single-process.
  Trainer(RecipeConfig cfg, std::shared_ptr<parallel::Communicator> world);
  // Trains cfg.algorithm for trainer.max_steps (or until a stop request), writing the run directory.
  // Collective over `world`. Bad input: UserError naming the file or key.
  TrainResult run();

 private:
  RecipeConfig cfg_;
  std::shared_ptr<parallel::Communicator> world_;
};

}  // namespace distillery
