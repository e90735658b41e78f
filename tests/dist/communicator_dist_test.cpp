// Every collective of the MPI communicator against the value one process computes from the
// formula each rank used for its input, for float32, bfloat16 and int64 (and float64/int32 for
// allreduce). Inputs are exact in every dtype, so equality is exact.
#include <gtest/gtest.h>

#include "parallel/runtime.h"

namespace distillery::parallel {
namespace {

Communicator& comm_world() { return *Runtime::get().world; }

// What rank `r` contributes: distinct per rank and element, negative and fractional values
// included so a bf16 sum done on the raw bits (not as floats) cannot pass. Float values are
// multiples of 0.5 below 11 in magnitude, so every partial sum of up to 4 ranks is exact in
// bf16 whatever order the reduction adds them in.
torch::Tensor rank_input(int r, torch::ScalarType dtype, std::vector<int64_t> shape) {
  const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
  torch::Tensor base = torch::arange(n, torch::kDouble).remainder(16).reshape(shape);
  const bool is_float = dtype == torch::kFloat || dtype == torch::kDouble || dtype == torch::kBFloat16;
  torch::Tensor v = is_float ? (base - 3.0) * 0.5 + r * 1.5 : torch::arange(n, torch::kDouble).reshape(shape) * 7 - 5 + r * 3;
  return v.to(dtype);
}

const torch::ScalarType kCollectiveDtypes[] = {torch::kFloat, torch::kBFloat16, torch::kLong};

std::string dtype_name(torch::ScalarType t) { return c10::toString(t); }

TEST(MpiCommunicator, RunsOnEveryRankOfTheJob) {
  Communicator& c = comm_world();
  EXPECT_EQ(c.backend(), "mpi");
  EXPECT_EQ(c.size(), Runtime::get().world_size);
  EXPECT_EQ(c.rank(), Runtime::get().world_rank);
  EXPECT_GE(c.size(), 2) << "dist_tests runs under mpirun -np >= 2";
}

TEST(MpiCommunicator, AllreduceSumMaxMinMatchOneProcess) {
  Communicator& c = comm_world();
  const torch::ScalarType dtypes[] = {torch::kFloat, torch::kBFloat16, torch::kLong, torch::kDouble, torch::kInt};
  for (torch::ScalarType dtype : dtypes) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin}) {
      torch::Tensor expected = rank_input(0, dtype, {3, 5}).to(torch::kDouble);
      for (int r = 1; r < c.size(); ++r) {
        torch::Tensor x = rank_input(r, dtype, {3, 5}).to(torch::kDouble);
        expected = op == ReduceOp::kSum ? expected + x : op == ReduceOp::kMax ? torch::maximum(expected, x)
                                                                              : torch::minimum(expected, x);
      }
      torch::Tensor t = rank_input(c.rank(), dtype, {3, 5});
      c.allreduce(t, op);
      EXPECT_EQ(t.scalar_type(), dtype);
      EXPECT_TRUE(torch::equal(t.to(torch::kDouble), expected))
          << dtype_name(dtype) << " op " << static_cast<int>(op) << "\n" << t << "\nexpected\n" << expected;
    }
  }
}

// Data-parallel replicas stay identical only if every rank gets the same bits from a sum whose
// rounding depends on the order of additions.
TEST(MpiCommunicator, AllreduceOfInexactSumsIsBitwiseEqualOnEveryRank) {
  Communicator& c = comm_world();
  for (torch::ScalarType dtype : {torch::kFloat, torch::kBFloat16}) {
    for (int64_t n : {int64_t{7}, int64_t{4096}}) {
      torch::manual_seed(40 + c.rank());
      torch::Tensor t = torch::randn({n}).to(dtype);
      torch::Tensor sync = t.clone();
      c.allreduce(t);
      auto work = c.allreduce_async(sync);
      work->wait();
      // Blocking and async calls may use different algorithms (so round differently); each
      // must agree with itself across ranks.
      torch::Tensor all = c.allgather(torch::stack({t, sync}));  // [2 * size, n]: t, sync of rank 0, 1, ...
      for (int r = 1; r < c.size(); ++r) {
        EXPECT_TRUE(torch::equal(all[2 * r], all[0])) << dtype_name(dtype) << " n=" << n << " rank " << r;
        EXPECT_TRUE(torch::equal(all[2 * r + 1], all[1])) << dtype_name(dtype) << " n=" << n << " rank " << r;
      }
    }
  }
}

TEST(MpiCommunicator, Bfloat16SumIsTheFloatSumRoundedToNearestEven) {
  // Rank 0 holds 1, rank 1 holds odd multiples of 2^-8, the others 0 (exact in any order): the
  // float sums fall halfway between bf16 neighbours, so truncation or a sum on the raw bits
  // would give a different answer than float arithmetic with round-to-nearest-even.
  Communicator& c = comm_world();
  const float tiny[] = {std::ldexp(1.0f, -8), 3 * std::ldexp(1.0f, -8), -std::ldexp(1.0f, -8)};
  torch::Tensor t = torch::zeros({3}, torch::kBFloat16);
  for (int i = 0; i < 3; ++i) {
    if (c.rank() == 0) t[i] = 1.0;
    if (c.rank() == 1) t[i] = tiny[i];
  }
  c.allreduce(t);
  const float expected[] = {1.0f, 1.015625f, 0.99609375f};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(t[i].item<float>(), expected[i]) << i;
    EXPECT_EQ(t[i].item<float>(), static_cast<float>(c10::BFloat16(1.0f + tiny[i]))) << i;
  }
}

TEST(MpiCommunicator, AsyncAllreducesCompleteInAnyWaitOrder) {
  Communicator& c = comm_world();
  for (torch::ScalarType dtype : kCollectiveDtypes) {
    torch::Tensor a = rank_input(c.rank(), dtype, {64});
    torch::Tensor b = rank_input(c.rank(), dtype, {7, 3}) * 2;
    torch::Tensor expected_a = torch::zeros({64}, torch::kDouble);
    torch::Tensor expected_b = torch::zeros({7, 3}, torch::kDouble);
    for (int r = 0; r < c.size(); ++r) {
      expected_a += rank_input(r, dtype, {64}).to(torch::kDouble);
      expected_b += (rank_input(r, dtype, {7, 3}) * 2).to(torch::kDouble);
    }
    auto work_a = c.allreduce_async(a);
    auto work_b = c.allreduce_async(b, ReduceOp::kSum);
    work_b->wait();
    work_a->wait();
    work_a->wait();  // idempotent
    EXPECT_TRUE(torch::equal(a.to(torch::kDouble), expected_a)) << dtype_name(dtype);
    EXPECT_TRUE(torch::equal(b.to(torch::kDouble), expected_b)) << dtype_name(dtype);
  }
}

TEST(MpiCommunicator, BroadcastCopiesTheRootsValues) {
  Communicator& c = comm_world();
  const int root = c.size() - 1;
  for (torch::ScalarType dtype : kCollectiveDtypes) {
    torch::Tensor t = rank_input(c.rank(), dtype, {2, 3, 4});
    c.broadcast(t, root);
    EXPECT_TRUE(torch::equal(t, rank_input(root, dtype, {2, 3, 4}))) << dtype_name(dtype);
  }
  torch::Tensor flags = torch::full({5}, c.rank() == 0, torch::kBool);
  c.broadcast(flags, 0);
  EXPECT_TRUE(flags.all().item<bool>());
}

TEST(MpiCommunicator, AllgatherConcatenatesInRankOrderWithUnequalRows) {
  Communicator& c = comm_world();
  for (torch::ScalarType dtype : kCollectiveDtypes) {
    // Rank r contributes r + 1 rows.
    torch::Tensor mine = rank_input(c.rank(), dtype, {c.rank() + 1, 3});
    torch::Tensor got = c.allgather(mine);
    std::vector<torch::Tensor> parts;
    for (int r = 0; r < c.size(); ++r) parts.push_back(rank_input(r, dtype, {r + 1, 3}));
    EXPECT_TRUE(torch::equal(got, torch::cat(parts))) << dtype_name(dtype);
  }
  // A non-contiguous input is gathered by value.
  torch::Tensor strided = rank_input(c.rank(), torch::kFloat, {3, 4}).t();
  EXPECT_TRUE(torch::equal(c.allgather(strided).narrow(0, 4 * c.rank(), 4), strided));
}

TEST(MpiCommunicator, ReduceScatterGivesEachRankItsSliceOfTheSum) {
  Communicator& c = comm_world();
  for (torch::ScalarType dtype : kCollectiveDtypes) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax}) {
      const std::vector<int64_t> shape = {2 * c.size(), 3};
      torch::Tensor full = rank_input(0, dtype, shape).to(torch::kDouble);
      for (int r = 1; r < c.size(); ++r) {
        torch::Tensor x = rank_input(r, dtype, shape).to(torch::kDouble);
        full = op == ReduceOp::kSum ? full + x : torch::maximum(full, x);
      }
      torch::Tensor got = c.reduce_scatter(rank_input(c.rank(), dtype, shape), op);
      EXPECT_EQ(got.sizes(), (std::vector<int64_t>{2, 3}));
      EXPECT_TRUE(torch::equal(got.to(torch::kDouble), full.narrow(0, 2 * c.rank(), 2))) << dtype_name(dtype);
    }
  }
}

// Rank s sends (s + d) % 3 rows to rank d; each row holds (s, d, row index).
int64_t a2a_rows(int src, int dst) { return (src + dst) % 3; }

torch::Tensor a2a_block(int src, int dst, torch::ScalarType dtype) {
  const int64_t n = a2a_rows(src, dst);
  torch::Tensor rows = torch::arange(n, torch::kDouble).unsqueeze(1);
  torch::Tensor block = torch::cat({torch::full({n, 1}, src * 1.0, torch::kDouble),
                                    torch::full({n, 1}, dst * 1.0, torch::kDouble), rows},
                                   1);
  return block.to(dtype);
}

TEST(MpiCommunicator, AllToAllDeliversEachRanksRowsInSourceOrder) {
  Communicator& c = comm_world();
  for (torch::ScalarType dtype : kCollectiveDtypes) {
    std::vector<torch::Tensor> send_blocks, expected_blocks;
    std::vector<int64_t> send_counts, recv_counts;
    for (int r = 0; r < c.size(); ++r) {
      send_blocks.push_back(a2a_block(c.rank(), r, dtype));
      send_counts.push_back(a2a_rows(c.rank(), r));
      expected_blocks.push_back(a2a_block(r, c.rank(), dtype));
      recv_counts.push_back(a2a_rows(r, c.rank()));
    }
    torch::Tensor got = c.all_to_all(torch::cat(send_blocks), send_counts, recv_counts);
    EXPECT_TRUE(torch::equal(got, torch::cat(expected_blocks))) << dtype_name(dtype) << "\n" << got;
  }
}

TEST(MpiCommunicator, SplitFormsGroupsOrderedByKey) {
  Communicator& c = comm_world();
  // Even and odd ranks, each group ordered by descending world rank.
  std::shared_ptr<Communicator> half = c.split(c.rank() % 2, -c.rank());
  std::vector<int> members;
  for (int r = c.size() - 1; r >= 0; --r)
    if (r % 2 == c.rank() % 2) members.push_back(r);
  ASSERT_EQ(half->size(), static_cast<int>(members.size()));
  EXPECT_EQ(members[half->rank()], c.rank());
  torch::Tensor t = torch::full({2}, static_cast<int64_t>(c.rank()), torch::kLong);
  half->allreduce(t);
  int64_t expected = 0;
  for (int r : members) expected += r;
  EXPECT_EQ(t[0].item<int64_t>(), expected);
  torch::Tensor order = half->allgather(torch::full({1}, static_cast<int64_t>(c.rank()), torch::kLong));
  EXPECT_EQ(std::vector<int64_t>(order.data_ptr<int64_t>(), order.data_ptr<int64_t>() + order.numel()),
            std::vector<int64_t>(members.begin(), members.end()));
  half->barrier();
  // A group split again, down to single ranks.
  std::shared_ptr<Communicator> single = half->split(half->rank(), 0);
  EXPECT_EQ(single->size(), 1);
  torch::Tensor s = torch::ones({3});
  single->allreduce(s);
  EXPECT_TRUE(torch::equal(s, torch::ones({3})));
}

TEST(MpiCommunicator, EmptyTensorsAreNoOps) {
  Communicator& c = comm_world();
  torch::Tensor empty = torch::empty({0, 4});
  c.allreduce(empty);
  c.broadcast(empty, 0);
  EXPECT_EQ(c.allgather(empty).sizes(), (std::vector<int64_t>{0, 4}));
  std::vector<int64_t> zeros(c.size(), 0);
  EXPECT_EQ(c.all_to_all(empty, zeros, zeros).sizes(), (std::vector<int64_t>{0, 4}));
  c.barrier();
}

}  // namespace
}  // namespace distillery::parallel
