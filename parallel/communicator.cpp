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

std::vector<int64_t> shape_with_rows(const torch::Tensor& t, int64_t rows) {
  std::vector<int64_t> sizes = t.sizes().vec();
  sizes[0] = rows;
  return sizes;
}

}  // namespace distillery::parallel
