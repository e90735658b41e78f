// Communicator over NCCL for CUDA tensors on one device. MPI (or any CPU communicator) only
// bootstraps it: rank 0 makes the ncclUniqueId and `bootstrap` broadcasts it. nccl.h and the
// CUDA headers stay inside nccl_communicator.cpp.
//
// Streams, as in PyTorch's NCCL process group: blocking collectives are queued on the current
// CUDA stream (ordered with the kernels around them, the host does not wait); allreduce_async
// runs on a side stream that first waits for the current stream, and Work::wait() makes the
// current stream wait for it, so the collective overlaps with kernels queued in between.
// The tensor's memory is kept from reuse (recordStream) until the side stream is done with it.
//
// Built only with DISTILLERY_WITH_NCCL (CMake defines it when NCCL and a CUDA LibTorch are found).
#pragma once

#include "parallel/communicator.h"

#ifdef DISTILLERY_WITH_NCCL

namespace distillery::parallel {

class NcclCommunicator final : public Communicator {
 public:
  struct State;  // ncclComm_t and the side stream; defined in the .cpp

  // Collective over `bootstrap`'s ranks, each passing the CUDA device it computes on.
  NcclCommunicator(std::shared_ptr<Communicator> bootstrap, torch::Device device);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

  void allreduce(torch::Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  std::unique_ptr<Work> allreduce_async(torch::Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  void broadcast(torch::Tensor& t, int root) override;
  // Every rank's `t` must have the same shape (NCCL moves equal-sized blocks).
  torch::Tensor allgather(const torch::Tensor& t) override;
  torch::Tensor reduce_scatter(const torch::Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  torch::Tensor all_to_all(const torch::Tensor& t, const std::vector<int64_t>& send_counts,
                           const std::vector<int64_t>& recv_counts) override;
  // Also waits on the host for the current stream, so it orders host-side work across ranks.
  void barrier() override;
  // Splits the bootstrap communicator, then makes a NCCL communicator per new group.
  std::shared_ptr<Communicator> split(int color, int key) override;

 private:
  std::shared_ptr<Communicator> bootstrap_;
  torch::Device device_;
  std::unique_ptr<State> state_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace distillery::parallel

#endif  // DISTILLERY_WITH_NCCL
