// GradReducer's bucket layout and its single-rank behaviour (the multi-rank reduction is
// tested under mpirun in tests/dist/grad_reducer_dist_test.cpp).
#include <gtest/gtest.h>

#include "parallel/grad_reducer.h"
#include "common/error.h"

namespace distillery::parallel {
namespace {

NamedTensors reducer_params(const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes,
                            torch::ScalarType dtype = torch::kFloat) {
  NamedTensors out;
  for (const auto& [name, shape] : shapes) out.emplace_back(name, torch::zeros(shape, torch::dtype(dtype).requires_grad(true)));
  return out;
}

TEST(GradReducerBuckets, ReverseRegistrationOrderCappedBySize) {
  // 1 KiB cap, float32: a [256] tensor fills a bucket alone.
  NamedTensors params = reducer_params({{"a", {100}}, {"b", {200}}, {"c", {256}}, {"d", {50}}, {"e", {10}}});
  GradReducer reducer(params, std::make_shared<LocalCommunicator>(), 1.0 / 1024);
  EXPECT_EQ(reducer.bucket_names(),
            (std::vector<std::vector<std::string>>{{"e", "d"}, {"c"}, {"b"}, {"a"}}));
}

TEST(GradReducerBuckets, FrozenParametersAreLeftOut) {
  NamedTensors params = reducer_params({{"base", {8}}, {"lora_A", {8}}, {"lora_B", {8}}});
  params[0].second.requires_grad_(false);
  GradReducer reducer(params, std::make_shared<LocalCommunicator>());
  EXPECT_EQ(reducer.bucket_names(), (std::vector<std::vector<std::string>>{{"lora_B", "lora_A"}}));
}

TEST(GradReducerBuckets, DtypesNeverShareABucket) {
  NamedTensors params = reducer_params({{"f1", {4}}, {"f2", {4}}});
  NamedTensors doubles = reducer_params({{"d1", {4}}}, torch::kDouble);
  params.insert(params.begin() + 1, doubles.front());  // f1, d1, f2
  GradReducer reducer(params, std::make_shared<LocalCommunicator>());
  EXPECT_EQ(reducer.bucket_names(), (std::vector<std::vector<std::string>>{{"f2", "f1"}, {"d1"}}));
}

TEST(GradReducer, OneRankLeavesGradientsAsTheyAre) {
  torch::Tensor w = torch::ones({3}, torch::requires_grad());
  GradReducer reducer({{"w", w}}, std::make_shared<LocalCommunicator>());
  reducer.begin_step(true);
  (3 * w).sum().backward();
  reducer.finish();
  EXPECT_TRUE(torch::equal(w.grad(), torch::full({3}, 3.0)));
  LocalCommunicator local;
  broadcast_parameters(std::vector<torch::Tensor>{w}, local);
  EXPECT_TRUE(torch::equal(w, torch::ones({3})));
}

}  // namespace
}  // namespace distillery::parallel
