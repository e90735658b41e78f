#include "algorithms/sft/sft.h"
#include "trainer/algorithm_registry.h"

namespace distillery {

void register_sft_algorithm(AlgorithmRegistry& registry) {
  AlgorithmSpec spec;
  spec.name = "sft";
  spec.doc = "supervised fine-tuning: next-token cross-entropy on the assistant (or labelled) tokens of packed rows";
  spec.make = [](AlgorithmContext& ctx) -> std::unique_ptr<Algorithm> { return std::make_unique<Sft>(ctx); };
  registry.add(std::move(spec));
}

}  // namespace distillery
