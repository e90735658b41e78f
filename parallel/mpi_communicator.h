// Communicator over an MPI communicator, for CPU tensors. MPI bootstraps every multi-rank run
// (see runtime.h) and carries the CPU collectives: the dist tests, CPU training, and the
// bootstrap of NCCL. mpi.h stays inside parallel/*.cpp: the MPI_Comm lives behind `Handle`.
#pragma once

#include "parallel/communicator.h"

#ifdef DISTILLERY_WITH_MPI

namespace distillery::parallel {

// Dtypes: float32, float64, bfloat16, float16, int64, int32, int16, int8, uint8 (bool too for
// the collectives that do not reduce). bfloat16/float16 reduce through user-defined MPI ops
// that accumulate each pair in float32 and round once, as NCCL does.
class MpiCommunicator final : public Communicator {
 public:
  struct Handle;  // owns an MPI_Comm; defined in mpi_communicator.cpp

  // A duplicate of MPI_COMM_WORLD, so library traffic never matches user or test messages.
  // MPI must be initialised (Runtime::init does it).
  static std::shared_ptr<MpiCommunicator> world();

  explicit MpiCommunicator(std::unique_ptr<Handle> handle);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void allreduce(torch::Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  // MPI_Iallreduce. Open MPI progresses it inside later MPI calls and in wait(), so the
  // overlap with computation is partial on CPU; see grad_reducer.h.
  std::unique_ptr<Work> allreduce_async(torch::Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  void broadcast(torch::Tensor& t, int root) override;
  // Ranks may contribute different dim-0 lengths; trailing dims must agree.
  torch::Tensor allgather(const torch::Tensor& t) override;
  torch::Tensor reduce_scatter(const torch::Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  torch::Tensor all_to_all(const torch::Tensor& t, const std::vector<int64_t>& send_counts,
                           const std::vector<int64_t>& recv_counts) override;
  void barrier() override;
  std::shared_ptr<Communicator> split(int color, int key) override;

 private:
  std::unique_ptr<Handle> handle_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace distillery::parallel

#endif  // DISTILLERY_WITH_MPI
