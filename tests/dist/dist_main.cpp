// Entry point of dist_tests, run as `mpirun -np N dist_tests`. Every rank runs every test (the
// collectives need all of them); rank 0 prints gtest's usual report, the other ranks print only
// their own failures, tagged with their rank. The exit code is non-zero on every rank if a test
// failed on any rank, so mpirun (and ctest) fail.
#include <gtest/gtest.h>

#include <iostream>

#include "algorithms/registry.h"
#include "parallel/runtime.h"

namespace {

class RankFailurePrinter final : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(std::string tag) : tag_(std::move(tag)) {}
  void OnTestStart(const ::testing::TestInfo& info) override {
    test_ = std::string(info.test_suite_name()) + "." + info.name();
  }
  // (gtest holds its lock here: UnitTest::current_test_info() would deadlock.)
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::cerr << tag_ << "FAILED " << test_ << " at " << (result.file_name() ? result.file_name() : "?") << ":" << result.line_number() << "\n"
              << result.summary() << std::endl;
  }

 private:
  std::string tag_;
  std::string test_;
};

}  // namespace

int main(int argc, char** argv) {
  distillery::register_algorithms();
  auto& rt = distillery::parallel::Runtime::init(&argc, &argv);
  torch::set_num_threads(1);
  ::testing::InitGoogleTest(&argc, argv);
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (rt.world_rank != 0) {
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rt.rank_tag()));
  }
  const int local_failed = RUN_ALL_TESTS() != 0 ? 1 : 0;

  torch::Tensor failed = torch::tensor({local_failed}, torch::kInt);
  rt.world->allreduce(failed, distillery::parallel::ReduceOp::kSum);
  const int failed_ranks = failed.item<int>();
  if (rt.world_rank == 0)
    std::cout << "[dist] " << rt.world_size << " ranks (" << rt.launch.launcher << "): "
              << (failed_ranks == 0 ? std::string("all passed")
                                    : std::to_string(failed_ranks) + " rank(s) had failures")
              << std::endl;
  rt.finalize();
  return failed_ranks == 0 ? 0 : 1;
}
