// The one training loop: accumulation, clipping, optimizer, schedule, logging, eval,
// checkpoints, resume and signals, for every algorithm.
#pragma once

#include <memory>
#include <string>

#include "algorithms/algorithm.h"
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
  TrainResult run();

 private:
  std::unique_ptr<Algorithm> make_algorithm(int64_t vocab_size, const parallel::Communicator& dp);
  RecipeConfig cfg_;
  std::shared_ptr<parallel::Communicator> world_;
};

}  // namespace distillery
