#include "parallel/communicator.h"

namespace distillery::parallel {

namespace {
class CompletedWork final : public Work {
 public:
  void wait() override {}
};
}  // namespace

std::unique_ptr<Work> LocalCommunicator::allreduce_async(torch::Tensor&, ReduceOp) {
  return std::make_unique<CompletedWork>();
}

}  // namespace distillery::parallel
