// Data parallelism gives the same answer as one process: a small network trained for a few
// steps, each rank seeing its shard of every global batch in 2 micro-batches, has the
// gradients and weights of one process computing on the whole batch.
#include <gtest/gtest.h>

#include "parallel/grad_reducer.h"
#include "parallel/runtime.h"
#include "common/error.h"

namespace distillery::parallel {
namespace {

namespace rF = torch::nn::functional;

constexpr int64_t kReducerGlobalBatch = 16;
constexpr int64_t kReducerFeatures = 6;
constexpr int64_t kReducerClasses = 5;

// fc2.weight is used twice (a tied weight); `rare` is reached only by examples of class 0, like
// an expert few tokens are routed to; `unused` never is. Registration order puts them where
// the reduction meets them last.
struct ReducerNetImpl : torch::nn::Module {
  ReducerNetImpl() {
    unused = register_parameter("unused", torch::randn({3}));
    rare = register_parameter("rare", torch::randn({kReducerClasses}) * 0.1);
    fc1 = register_module("fc1", torch::nn::Linear(kReducerFeatures, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 16));
    head = register_module("head", torch::nn::Linear(16, kReducerClasses));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& labels) {
    torch::Tensor h = torch::tanh(fc1(x));       // [B, 16]
    h = torch::tanh(fc2(h));                      // [B, 16]
    h = torch::tanh(rF::linear(h, fc2->weight));   // [B, 16], fc2.weight again
    torch::Tensor logits = head(h);               // [B, C]
    torch::Tensor mask = labels.eq(0);
    if (mask.any().item<bool>()) logits = logits + mask.unsqueeze(1).to(torch::kFloat) * rare;
    return logits;
  }
  torch::Tensor unused, rare;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, head{nullptr};
};
TORCH_MODULE(ReducerNet);

// Loss normalised by the global batch, as distillery's losses are: a sum over the examples
// given, divided by the examples of the whole optimizer step.
torch::Tensor reducer_loss(ReducerNet& net, const torch::Tensor& x, const torch::Tensor& labels) {
  return rF::cross_entropy(net->forward(x, labels), labels, rF::CrossEntropyFuncOptions().reduction(torch::kSum)) /
         static_cast<double>(kReducerGlobalBatch);
}

// Global batch of `step`: class 0 only at examples 1 and 5, so on 2 or 4 ranks some ranks and
// micro-batches never reach `rare` while others do.
std::pair<torch::Tensor, torch::Tensor> reducer_batch(int step) {
  torch::manual_seed(1000 + step);
  torch::Tensor x = torch::randn({kReducerGlobalBatch, kReducerFeatures});
  torch::Tensor labels = torch::randint(1, kReducerClasses, {kReducerGlobalBatch}, torch::kLong);
  labels[1] = 0;
  labels[5] = 0;
  return {x, labels};
}

ReducerNet seeded_net(uint64_t seed) {
  torch::manual_seed(seed);
  return ReducerNet();
}

torch::Tensor grad_or_zeros(const torch::Tensor& p) {
  return p.grad().defined() ? p.grad() : torch::zeros_like(p);
}

TEST(GradReducer, TwoMicroBatchesPerRankMatchOneProcessOnTheWholeBatch) {
  auto world = Runtime::get().world;
  const int n = world->size(), rank = world->rank();
  ASSERT_EQ(kReducerGlobalBatch % (2 * n), 0);

  // Every rank starts from its own random weights; broadcast_parameters makes them rank 0's,
  // which is the network one process seeds with 100.
  ReducerNet net = seeded_net(100 + rank);
  ReducerNet reference = seeded_net(100);
  broadcast_parameters(to_named_tensors(net->named_parameters()), *world, 0);
  for (const auto& item : net->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), reference->named_parameters()[item.key()])) << item.key();

  GradReducer reducer(to_named_tensors(net->named_parameters()), world, /*bucket_mb=*/0.001);
  const auto buckets = reducer.bucket_names();
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[0], (std::vector<std::string>{"head.bias", "head.weight", "fc2.bias"}));
  EXPECT_EQ(buckets[2].back(), "unused");

  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1));
  torch::optim::SGD opt_ref(reference->parameters(), torch::optim::SGDOptions(0.1));
  const int64_t shard = kReducerGlobalBatch / n, micro = shard / 2;
  for (int step = 0; step < 3; ++step) {
    auto [x, labels] = reducer_batch(step);
    opt_ref.zero_grad();
    reducer_loss(reference, x, labels).backward();

    opt.zero_grad();
    for (int k = 0; k < 2; ++k) {
      reducer.begin_step(/*sync=*/k == 1);
      const int64_t begin = rank * shard + k * micro;
      reducer_loss(net, x.narrow(0, begin, micro), labels.narrow(0, begin, micro)).backward();
    }
    reducer.finish();

    for (const auto& item : net->named_parameters()) {
      const torch::Tensor& ref_param = reference->named_parameters()[item.key()];
      ASSERT_TRUE(item.value().grad().defined()) << item.key() << ": finish() leaves every .grad defined";
      const double diff = (item.value().grad() - grad_or_zeros(ref_param)).abs().max().item<double>();
      EXPECT_LE(diff, 1e-6) << "step " << step << " " << item.key();
    }
    EXPECT_GT(grad_or_zeros(net->rare).abs().sum().item<double>(), 0.0) << "class-0 examples reach `rare`";
    // Buckets 0 and 1 complete inside backward; bucket 2 holds `unused`, so finish() starts it.
    EXPECT_EQ(reducer.last_stats().buckets, 3);
    EXPECT_EQ(reducer.last_stats().launched_during_backward, 2);
    opt.step();
    opt_ref.step();
  }
  for (const auto& item : net->named_parameters()) {
    const double diff = (item.value() - reference->named_parameters()[item.key()]).abs().max().item<double>();
    EXPECT_LE(diff, 1e-6) << item.key();
  }
}

TEST(GradReducer, SumsWhatEarlierMicroBatchesAccumulated) {
  auto world = Runtime::get().world;
  const int n = world->size(), rank = world->rank();
  torch::Tensor w = torch::zeros({10}, torch::requires_grad());
  torch::Tensor v = torch::zeros({4}, torch::dtype(torch::kDouble).requires_grad(true));
  GradReducer reducer({{"w", w}, {"v", v}}, world);
  EXPECT_EQ(reducer.bucket_names().size(), 2u) << "float and double never share a bucket";
  // Micro-batch 0 is local only: rank r's gradient is (r + 1).
  reducer.begin_step(false);
  ((rank + 1.0) * w.sum() + (rank + 1.0) * v.sum()).backward();
  EXPECT_TRUE(torch::equal(w.grad(), torch::full({10}, rank + 1.0))) << "begin_step(false) does not communicate";
  // Micro-batch 1 adds 2 on every rank, then the sum over ranks.
  reducer.begin_step(true);
  (2.0 * w.sum() + 2.0 * v.sum()).backward();
  reducer.finish();
  const double expected = n * (n + 1) / 2.0 + 2.0 * n;
  EXPECT_TRUE(torch::equal(w.grad(), torch::full({10}, expected)));
  EXPECT_TRUE(torch::equal(v.grad(), torch::full({4}, expected, torch::kDouble)));
}

TEST(GradReducer, SecondBackwardInOneSyncStepIsAnError) {
  auto world = Runtime::get().world;
  torch::Tensor w = torch::ones({3}, torch::requires_grad());
  GradReducer reducer({{"w", w}}, world);
  reducer.begin_step(true);
  w.sum().backward();
  try {
    (2 * w).sum().backward();
    FAIL() << "a second accumulation into a bucket being reduced was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("parameter 'w' received its gradient twice"), std::string::npos)
        << e.what();
  }
  reducer.finish();  // completes the collective every rank started
  EXPECT_THROW(reducer.finish(), InternalError);
}

}  // namespace
}  // namespace distillery::parallel
