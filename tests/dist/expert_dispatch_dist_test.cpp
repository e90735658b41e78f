// Expert parallelism gives the answer of one process: every rank routes its own tokens to experts
// spread over the world, and its output and the gradients of its input and routing weights equal
// those of the full expert list run locally; each expert's gradient is the sum, over all ranks'
// tokens, of the full model's gradient for that expert.
#include <gtest/gtest.h>

#include <functional>
#include <numeric>

#include "models/moe.h"
#include "parallel/expert_dispatch.h"
#include "parallel/runtime.h"
#include "models/model_config.h"

namespace distillery::expert_dispatch_test {
namespace {

constexpr int64_t kDispatchExperts = 8;  // divisible by 2 and 4
constexpr int64_t kDispatchTopK = 2;

// The fields RoutedExperts reads: 8 experts of width 16 on hidden 32. (Built directly, not from
// tests/unit/moe_test_util.h, whose distillery::testing namespace would shadow gtest's `testing::`
// in the other dist tests sharing this unity batch.)
TransformerConfig dispatch_config() {
  TransformerConfig c;
  c.hidden_size = 32;
  c.moe.num_experts = kDispatchExperts;
  c.moe.num_experts_per_tok = kDispatchTopK;
  c.moe.moe_intermediate_size = 16;
  return c;
}

// One rank's tokens and routing: k distinct experts per token, drawn from the first `usable`.
struct Batch {
  torch::Tensor x, experts, weights, grad_out;
};

Batch make_batch(int64_t tokens, int64_t usable, uint64_t seed, torch::ScalarType dtype) {
  torch::manual_seed(seed);
  Batch b;
  b.x = torch::randn({tokens, 32}).to(dtype);
  b.experts = std::get<1>(torch::rand({tokens, usable}).topk(kDispatchTopK));  // [N, k] int64
  b.weights = torch::rand({tokens, kDispatchTopK});
  b.grad_out = torch::randn({tokens, 32}).to(dtype);
  return b;
}

struct Pass {
  torch::Tensor out, x_grad, w_grad;
};

// out = f(x, experts, weights); backward of sum(out * grad_out).
Pass run_pass(const Batch& b, const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& f) {
  auto x = b.x.clone().requires_grad_(true);
  auto w = b.weights.clone().requires_grad_(true);
  auto out = f(x, w);
  (out.to(torch::kFloat32) * b.grad_out.to(torch::kFloat32)).sum().backward();
  return {out.detach(), x.grad(), w.grad()};
}

// max |a - b| <= atol + rtol * max |b|, in fp32: relative to the tensor's scale, since in bf16 a
// small element of a gradient is a sum of terms each rounded at the scale of the large ones.
::testing::AssertionResult near(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  if (!a.defined() || !b.defined()) return ::testing::AssertionFailure() << "undefined tensor";
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << a.sizes() << " vs " << b.sizes();
  if (b.numel() == 0) return ::testing::AssertionSuccess();
  auto fa = a.to(torch::kFloat32), fb = b.to(torch::kFloat32);
  const double diff = (fa - fb).abs().max().item<double>(), scale = fb.abs().max().item<double>();
  if (diff <= atol + rtol * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |diff| " << diff << " > " << atol << " + " << rtol << " * max |ref| "
                                       << scale;
}

// Runs the dispatched layer on this rank's batch and the full expert list on the same batch, and
// compares outputs, input and weight gradients, and each local expert's parameter gradients with
// the world sum of the full model's.
void check_against_full(int64_t tokens, int64_t usable, torch::ScalarType dtype, double rtol, double atol) {
  auto world = parallel::Runtime::get().world;
  const int64_t n = world->size(), rank = world->rank(), per_rank = kDispatchExperts / n;
  ASSERT_EQ(kDispatchExperts % n, 0);
  auto cfg = dispatch_config();

  RoutedExperts full(cfg), local(cfg, rank * per_rank, per_rank);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(11);  // the same weights on every rank
    for (auto& p : full->parameters()) p.normal_(0, 0.3);
    auto named = full->named_parameters();
    for (auto& p : local->named_parameters()) p.value().copy_(named[p.key()]);
  }
  full->to(dtype);
  local->to(dtype);

  Batch b = make_batch(tokens, usable, 1000 + rank, dtype);
  Pass ep = run_pass(b, [&](const torch::Tensor& x, const torch::Tensor& w) {
    return parallel::expert_parallel_moe(x, b.experts, w, local->local_experts(), world);
  });
  Pass ref = run_pass(b, [&](const torch::Tensor& x, const torch::Tensor& w) { return full(x, b.experts, w); });

  EXPECT_EQ(ep.out.scalar_type(), dtype);
  EXPECT_TRUE(near(ep.out, ref.out, rtol, atol)) << "output";
  EXPECT_TRUE(near(ep.x_grad, ref.x_grad, rtol, atol)) << "x grad";
  EXPECT_TRUE(near(ep.w_grad, ref.w_grad, rtol, atol)) << "weights grad";

  // Every rank reduces every full-model gradient, in the same (registration) order.
  auto local_params = local->named_parameters();
  for (auto& p : full->named_parameters()) {
    auto g = p.value().grad().to(torch::kFloat32).contiguous();
    world->allreduce(g);
    if (!local_params.contains(p.key())) continue;
    EXPECT_TRUE(near(local_params[p.key()].grad(), g, rtol, atol)) << p.key();
  }
}

TEST(ExpertDispatch, MatchesTheFullExpertListInValueAndGradient) {
  const int rank = parallel::Runtime::get().world->rank();
  check_against_full(/*tokens=*/7 + 3 * rank, kDispatchExperts, torch::kFloat32, 1e-5, 1e-5);
}

TEST(ExpertDispatch, RanksWithoutTokensAndExpertsWithoutTokensTakePart) {
  // Rank 1 routes nothing; experts 6 and 7 are never chosen (on 4 ranks, rank 3 computes nothing
  // at all yet still gets their zero gradients and takes part in every exchange).
  const int rank = parallel::Runtime::get().world->rank();
  check_against_full(rank == 1 ? 0 : 5 + rank, kDispatchExperts - 2, torch::kFloat32, 1e-5, 1e-5);
}

TEST(ExpertDispatch, Bf16MatchesWithinRounding) {
  const int rank = parallel::Runtime::get().world->rank();
  check_against_full(/*tokens=*/9 + rank, kDispatchExperts, torch::kBFloat16, 3e-2, 1e-2);
}

TEST(ExpertDispatch, AllToAllSendsRowsAndReturnsTheirGradients) {
  auto world = parallel::Runtime::get().world;
  const int64_t n = world->size(), rank = world->rank();
  // Rank s sends (s + d) % 3 rows to rank d (some zero): row values name their source and index.
  auto sends = [&](int64_t s, int64_t d) { return (s + d) % 3; };
  std::vector<int64_t> send(n), recv(n);
  for (int64_t d = 0; d < n; ++d) send[d] = sends(rank, d), recv[d] = sends(d, rank);
  const int64_t rows = std::accumulate(send.begin(), send.end(), int64_t{0});
  auto x = (torch::arange(rows, torch::kFloat32) + 100.0 * rank).unsqueeze(1).repeat({1, 3}).requires_grad_(true);
  auto y = parallel::all_to_all_autograd(x, send, recv, world);  // [R, 3]

  std::vector<float> want;
  for (int64_t s = 0; s < n; ++s) {
    int64_t offset = 0;  // where rank s's rows for this rank start
    for (int64_t d = 0; d < rank; ++d) offset += sends(s, d);
    for (int64_t i = 0; i < sends(s, rank); ++i) want.push_back(static_cast<float>(100 * s + offset + i));
  }
  auto expected = torch::tensor(want, torch::kFloat32).reshape({-1, 1}).repeat({1, 3});
  EXPECT_TRUE(torch::equal(y.detach(), expected));

  // d/dy of sum(y * y_value) is y's value, the source row: it must land back on that row.
  (y * y.detach()).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), x.detach()));
}

}  // namespace
}  // namespace distillery::expert_dispatch_test
