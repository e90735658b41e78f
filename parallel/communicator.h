// Collective communication over a group of ranks. Backends: a single-process one (this file),
// MPI for CPU tensors, NCCL for CUDA tensors. Only parallel/ talks to MPI or NCCL; everything
// else sees this interface. Collectives are blocking unless they return a Work handle.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace distillery::parallel {

enum class ReduceOp { kSum, kMax, kMin };

// An in-flight asynchronous collective; wait() completes it (idempotent).
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;

  // In place on `t` (contiguous).
  virtual void allreduce(torch::Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  virtual std::unique_ptr<Work> allreduce_async(torch::Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  virtual void broadcast(torch::Tensor& t, int root) = 0;
  // Concatenation of every rank's `t` along dim 0, in rank order. Shapes must match across
  // ranks (NCCL moves equal blocks); the MPI backend also accepts different dim-0 lengths.
  virtual torch::Tensor allgather(const torch::Tensor& t) = 0;
  // `t` has dim 0 divisible by size(); rank r gets the reduced r-th slice.
  virtual torch::Tensor reduce_scatter(const torch::Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  // Rank r sends rows [offsets of send_counts] of `t` to each rank; returns what it received,
  // concatenated in source-rank order. Counts are in rows (dim 0).
  virtual torch::Tensor all_to_all(const torch::Tensor& t, const std::vector<int64_t>& send_counts,
                                   const std::vector<int64_t>& recv_counts) = 0;
  virtual void barrier() = 0;
  // Ranks with the same color form a new communicator, ordered by key.
  virtual std::shared_ptr<Communicator> split(int color, int key) = 0;
};

// `t`'s shape with dim 0 replaced by `rows`: the output of a collective that gathers or splits rows.
std::vector<int64_t> shape_with_rows(const torch::Tensor& t, int64_t rows);

// The one-rank group: every collective is the identity. Used by single-process runs and as
// the tp/ep group of size 1.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void allreduce(torch::Tensor&, ReduceOp) override {}
  std::unique_ptr<Work> allreduce_async(torch::Tensor&, ReduceOp) override;
  void broadcast(torch::Tensor&, int) override {}
  torch::Tensor allgather(const torch::Tensor& t) override { return t.clone(); }
  torch::Tensor reduce_scatter(const torch::Tensor& t, ReduceOp) override { return t.clone(); }
  torch::Tensor all_to_all(const torch::Tensor& t, const std::vector<int64_t>&,
                           const std::vector<int64_t>&) override {
    return t.clone();
  }
  void barrier() override {}
  std::shared_ptr<Communicator> split(int, int) override { return std::make_shared<LocalCommunicator>(); }
};

}  // namespace distillery::parallel
