#include "parallel/nccl_communicator.h"

#ifdef DISTILLERY_WITH_NCCL

#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <nccl.h>

#include <cstring>
#include <numeric>

#include "common/error.h"

namespace distillery::parallel {

struct NcclCommunicator::State {
  explicit State(c10::cuda::CUDAStream s) : side(s) {}
  ncclComm_t comm = nullptr;
  c10::cuda::CUDAStream side;  // allreduce_async runs here, beside the compute stream
};

namespace nccl_detail {

void check(ncclResult_t rc, const char* call) {
  if (rc == ncclSuccess) return;
  throw InternalError(detail::concat(call, " failed: ", ncclGetErrorString(rc)));
}

ncclDataType_t data_type(c10::ScalarType t) {
  switch (t) {
    case torch::kFloat: return ncclFloat32;
    case torch::kDouble: return ncclFloat64;
    case torch::kHalf: return ncclFloat16;
    case torch::kBFloat16: return ncclBfloat16;
    case torch::kLong: return ncclInt64;
    case torch::kInt: return ncclInt32;
    case torch::kChar: return ncclInt8;
    case torch::kByte: return ncclUint8;
    default: throw InternalError(detail::concat("NcclCommunicator: no reduction for dtype ", t));
  }
}

ncclRedOp_t red_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
  }
  throw InternalError("NcclCommunicator: unknown ReduceOp");
}

void check_tensor(const torch::Tensor& t, const torch::Device& device, const char* op, bool contiguous) {
  DIST_ASSERT(t.defined(), "NcclCommunicator::", op, ": undefined tensor");
  DIST_ASSERT(t.device() == device, "NcclCommunicator::", op, ": tensor on ", t.device(),
              ", communicator on ", device);
  DIST_ASSERT(!contiguous || t.is_contiguous(), "NcclCommunicator::", op,
              ": tensor must be contiguous (it is updated in place)");
}

class NcclWork final : public Work {
 public:
  NcclWork(at::cuda::CUDAEvent done, torch::Tensor tensor, c10::DeviceIndex device)
      : done_(std::move(done)), tensor_(std::move(tensor)), device_(device) {}
  void wait() override {
    if (!tensor_.defined()) return;
    done_.block(c10::cuda::getCurrentCUDAStream(device_));
    tensor_ = torch::Tensor();
  }

 private:
  at::cuda::CUDAEvent done_;
  torch::Tensor tensor_;
  c10::DeviceIndex device_;
};

}  // namespace nccl_detail

namespace ncd = nccl_detail;

NcclCommunicator::NcclCommunicator(std::shared_ptr<Communicator> bootstrap, torch::Device device)
    : bootstrap_(std::move(bootstrap)), device_(device) {
  DIST_ASSERT(bootstrap_ != nullptr, "NcclCommunicator without a bootstrap communicator");
  DIST_ASSERT(device_.is_cuda() && device_.has_index(), "NcclCommunicator on ", device_,
              ": needs a CUDA device with an index");
  rank_ = bootstrap_->rank();
  size_ = bootstrap_->size();

  ncclUniqueId id;
  torch::Tensor buf = torch::zeros({static_cast<int64_t>(sizeof(ncclUniqueId))}, torch::kUInt8);
  if (rank_ == 0) {
    ncd::check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    std::memcpy(buf.data_ptr(), &id, sizeof(id));
  }
  bootstrap_->broadcast(buf, 0);
  std::memcpy(&id, buf.data_ptr(), sizeof(id));

  c10::cuda::CUDAGuard guard(device_);
  state_ = std::make_unique<State>(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device_.index()));
  ncd::check(ncclCommInitRank(&state_->comm, size_, id, rank_), "ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
  if (state_ && state_->comm != nullptr) ncclCommDestroy(state_->comm);
}

void NcclCommunicator::allreduce(torch::Tensor& t, ReduceOp op) {
  ncd::check_tensor(t, device_, "allreduce", true);
  if (t.numel() == 0) return;
  c10::cuda::CUDAGuard guard(device_);
  ncd::check(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()),
                           ncd::data_type(t.scalar_type()), ncd::red_op(op), state_->comm,
                           c10::cuda::getCurrentCUDAStream(device_.index()).stream()),
             "ncclAllReduce");
}

std::unique_ptr<Work> NcclCommunicator::allreduce_async(torch::Tensor& t, ReduceOp op) {
  ncd::check_tensor(t, device_, "allreduce_async", true);
  c10::cuda::CUDAGuard guard(device_);
  const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(device_.index());
  // The side stream starts after the kernels that produced `t`.
  at::cuda::CUDAEvent ready;
  ready.record(compute);
  ready.block(state_->side);
  if (t.numel() > 0) {
    c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), state_->side);
    ncd::check(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()),
                             ncd::data_type(t.scalar_type()), ncd::red_op(op), state_->comm,
                             state_->side.stream()),
               "ncclAllReduce");
  }
  at::cuda::CUDAEvent done;
  done.record(state_->side);
  return std::make_unique<ncd::NcclWork>(std::move(done), t, device_.index());
}

void NcclCommunicator::broadcast(torch::Tensor& t, int root) {
  ncd::check_tensor(t, device_, "broadcast", true);
  DIST_ASSERT(root >= 0 && root < size_, "broadcast root ", root, " outside a group of ", size_);
  if (t.numel() == 0) return;
  c10::cuda::CUDAGuard guard(device_);
  // As bytes: broadcast moves any dtype.
  ncd::check(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.nbytes()), ncclUint8, root,
                           state_->comm, c10::cuda::getCurrentCUDAStream(device_.index()).stream()),
             "ncclBroadcast");
}

torch::Tensor NcclCommunicator::allgather(const torch::Tensor& t) {
  ncd::check_tensor(t, device_, "allgather", false);
  DIST_ASSERT(t.dim() >= 1, "allgather needs a tensor with a dim 0, got a scalar");
  c10::cuda::CUDAGuard guard(device_);
  const torch::Tensor src = t.contiguous();
  torch::Tensor out = torch::empty(shape_with_rows(src, src.size(0) * size_), src.options());
  if (src.numel() == 0) return out;
  ncd::check(ncclAllGather(src.data_ptr(), out.data_ptr(), static_cast<size_t>(src.nbytes()), ncclUint8,
                           state_->comm, c10::cuda::getCurrentCUDAStream(device_.index()).stream()),
             "ncclAllGather");
  return out;
}

torch::Tensor NcclCommunicator::reduce_scatter(const torch::Tensor& t, ReduceOp op) {
  ncd::check_tensor(t, device_, "reduce_scatter", false);
  DIST_ASSERT(t.dim() >= 1 && t.size(0) % size_ == 0, "reduce_scatter: dim 0 of ", t.sizes(),
              " is not divisible by the group size ", size_);
  c10::cuda::CUDAGuard guard(device_);
  const torch::Tensor src = t.contiguous();
  torch::Tensor out = torch::empty(shape_with_rows(src, src.size(0) / size_), src.options());
  if (out.numel() == 0) return out;
  ncd::check(ncclReduceScatter(src.data_ptr(), out.data_ptr(), static_cast<size_t>(out.numel()),
                               ncd::data_type(src.scalar_type()), ncd::red_op(op), state_->comm,
                               c10::cuda::getCurrentCUDAStream(device_.index()).stream()),
             "ncclReduceScatter");
  return out;
}

torch::Tensor NcclCommunicator::all_to_all(const torch::Tensor& t, const std::vector<int64_t>& send_counts,
                                           const std::vector<int64_t>& recv_counts) {
  ncd::check_tensor(t, device_, "all_to_all", false);
  DIST_ASSERT(t.dim() >= 1, "all_to_all needs a tensor with a dim 0, got a scalar");
  DIST_ASSERT(static_cast<int>(send_counts.size()) == size_ && static_cast<int>(recv_counts.size()) == size_,
              "all_to_all: ", send_counts.size(), " send and ", recv_counts.size(), " recv counts for a group of ",
              size_);
  const int64_t send_total = std::accumulate(send_counts.begin(), send_counts.end(), int64_t{0});
  const int64_t recv_total = std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0});
  DIST_ASSERT(send_total == t.size(0), "all_to_all: send counts sum to ", send_total, " but the tensor has ",
              t.size(0), " rows");
  c10::cuda::CUDAGuard guard(device_);
  const torch::Tensor src = t.contiguous();
  torch::Tensor out = torch::empty(shape_with_rows(src, recv_total), src.options());
  int64_t row = src.element_size();  // bytes of one dim-0 row, the same on every rank
  for (int64_t d = 1; d < src.dim(); ++d) row *= src.size(d);
  if (row == 0) return out;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_.index()).stream();
  const auto* send = static_cast<const char*>(src.data_ptr());
  auto* recv = static_cast<char*>(out.data_ptr());
  int64_t soff = 0, roff = 0;
  ncd::check(ncclGroupStart(), "ncclGroupStart");
  for (int r = 0; r < size_; ++r) {
    if (send_counts[r] > 0)
      ncd::check(ncclSend(send + soff * row, static_cast<size_t>(send_counts[r] * row), ncclUint8, r,
                          state_->comm, stream),
                 "ncclSend");
    if (recv_counts[r] > 0)
      ncd::check(ncclRecv(recv + roff * row, static_cast<size_t>(recv_counts[r] * row), ncclUint8, r,
                          state_->comm, stream),
                 "ncclRecv");
    soff += send_counts[r];
    roff += recv_counts[r];
  }
  ncd::check(ncclGroupEnd(), "ncclGroupEnd");
  return out;
}

void NcclCommunicator::barrier() {
  c10::cuda::CUDAGuard guard(device_);
  torch::Tensor one = torch::ones({1}, torch::TensorOptions().dtype(torch::kFloat).device(device_));
  allreduce(one);
  c10::cuda::getCurrentCUDAStream(device_.index()).synchronize();
}

std::shared_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  return std::make_shared<NcclCommunicator>(bootstrap_->split(color, key), device_);
}

}  // namespace distillery::parallel

#endif  // DISTILLERY_WITH_NCCL
