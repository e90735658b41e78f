#include "parallel/mpi_communicator.h"

#ifdef DISTILLERY_WITH_MPI

#include "parallel/mpi_include.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <functional>
#include <chrono>
#include <climits>
#include <cstdio>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>

#include "parallel/collective_timeout.h"
#include "common/error.h"

namespace distillery::parallel {

struct MpiCommunicator::Handle {
  MPI_Comm comm = MPI_COMM_NULL;
  // A twin of `comm` for the notes ranks exchange when a collective times out (errors returned,
  // not fatal, so a dead peer cannot turn the report into a crash).
  MPI_Comm side = MPI_COMM_NULL;
  std::atomic<int64_t> seq{0};  // collectives started on `comm`, so stalled ranks can tell which one they wait in
};

namespace mpi_comm_detail {

// MPI counts are `int`: larger buffers go in chunks of this many elements (or bytes).
constexpr int64_t kMaxChunk = int64_t{1} << 30;

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw InternalError(detail::concat(call, " failed: ", std::string(text, len)));
}

int to_int(int64_t v, const char* what) {
  DIST_ASSERT(v >= 0 && v <= INT_MAX, what, "=", v, " does not fit an MPI count");
  return static_cast<int>(v);
}

void check_cpu(const torch::Tensor& t, const char* op, bool need_contiguous) {
  DIST_ASSERT(t.defined(), "MpiCommunicator::", op, ": undefined tensor");
  DIST_ASSERT(t.device().is_cpu(), "MpiCommunicator::", op, ": tensor on ", t.device(),
              "; MPI carries CPU tensors (use the NCCL communicator for CUDA)");
  DIST_ASSERT(!need_contiguous || t.is_contiguous(), "MpiCommunicator::", op,
              ": tensor must be contiguous (it is updated in place)");
}

// 16-bit floats travel as MPI_UINT16_T and reduce through these ops: each pair is combined in
// float32 and rounded once, as NCCL does for bfloat16.
struct SumOp {
  float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  float operator()(float a, float b) const { return a < b ? b : a; }
};
struct MinOp {
  float operator()(float a, float b) const { return b < a ? b : a; }
};

template <typename T, typename Combine>
void reduce_16bit(void* in, void* inout, int* len, MPI_Datatype*) {
  const T* a = static_cast<const T*>(in);
  T* b = static_cast<T*>(inout);
  Combine combine;
  for (int i = 0; i < *len; ++i) b[i] = T(combine(static_cast<float>(a[i]), static_cast<float>(b[i])));
}

struct HalfOps {
  MPI_Op bf16[3];
  MPI_Op f16[3];
};

// Created on first use (after MPI_Init), kept until MPI_Finalize frees them.
const HalfOps& half_ops() {
  static const HalfOps ops = [] {
    HalfOps o{};
    check(MPI_Op_create(&reduce_16bit<c10::BFloat16, SumOp>, 1, &o.bf16[0]), "MPI_Op_create");
    check(MPI_Op_create(&reduce_16bit<c10::BFloat16, MaxOp>, 1, &o.bf16[1]), "MPI_Op_create");
    check(MPI_Op_create(&reduce_16bit<c10::BFloat16, MinOp>, 1, &o.bf16[2]), "MPI_Op_create");
    check(MPI_Op_create(&reduce_16bit<c10::Half, SumOp>, 1, &o.f16[0]), "MPI_Op_create");
    check(MPI_Op_create(&reduce_16bit<c10::Half, MaxOp>, 1, &o.f16[1]), "MPI_Op_create");
    check(MPI_Op_create(&reduce_16bit<c10::Half, MinOp>, 1, &o.f16[2]), "MPI_Op_create");
    return o;
  }();
  return ops;
}

MPI_Datatype element_type(c10::ScalarType t) {
  switch (t) {
    case torch::kFloat: return MPI_FLOAT;
    case torch::kDouble: return MPI_DOUBLE;
    case torch::kLong: return MPI_INT64_T;
    case torch::kInt: return MPI_INT32_T;
    case torch::kShort: return MPI_INT16_T;
    case torch::kChar: return MPI_INT8_T;
    case torch::kByte: return MPI_UINT8_T;
    case torch::kBFloat16:
    case torch::kHalf: return MPI_UINT16_T;
    default: throw InternalError(detail::concat("MpiCommunicator: no reduction for dtype ", t));
  }
}

MPI_Op reduce_op(c10::ScalarType t, ReduceOp op) {
  const int i = op == ReduceOp::kSum ? 0 : op == ReduceOp::kMax ? 1 : 2;
  if (t == torch::kBFloat16) return half_ops().bf16[i];
  if (t == torch::kHalf) return half_ops().f16[i];
  static const MPI_Op builtin[3] = {MPI_SUM, MPI_MAX, MPI_MIN};
  return builtin[i];
}

// Bytes of one dim-0 row: collectives that move rows use a contiguous datatype of this size,
// so counts and displacements are in rows and stay within `int` for any realistic tensor.
int64_t row_bytes(const torch::Tensor& t) {
  int64_t n = t.element_size();
  for (int64_t d = 1; d < t.dim(); ++d) n *= t.size(d);
  return n;
}

class RowType {
 public:
  explicit RowType(int64_t bytes) {
    check(MPI_Type_contiguous(to_int(bytes, "row bytes"), MPI_BYTE, &type_), "MPI_Type_contiguous");
    check(MPI_Type_commit(&type_), "MPI_Type_commit");
  }
  ~RowType() { MPI_Type_free(&type_); }
  RowType(const RowType&) = delete;
  RowType& operator=(const RowType&) = delete;
  MPI_Datatype get() const { return type_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
};

constexpr int kAskTag = 7301, kHereTag = 7302;

// A rank that timed out asks every peer where it is; a rank waiting in a collective answers with
// the number of the collective it waits in.
void answer_asks(MpiCommunicator::Handle& h) {
  int flag = 0;
  MPI_Status st;
  while (MPI_Iprobe(MPI_ANY_SOURCE, kAskTag, h.side, &flag, &st) == MPI_SUCCESS && flag) {
    int64_t theirs = 0;
    MPI_Recv(&theirs, 1, MPI_INT64_T, st.MPI_SOURCE, kAskTag, h.side, MPI_STATUS_IGNORE);
    const int64_t seq = h.seq;
    MPI_Send(&seq, 1, MPI_INT64_T, st.MPI_SOURCE, kHereTag, h.side);  // 8 bytes: sent eagerly
  }
}

std::vector<int> world_ranks(MPI_Comm comm, int size) {
  MPI_Group group, world;
  MPI_Comm_group(comm, &group);
  MPI_Comm_group(MPI_COMM_WORLD, &world);
  std::vector<int> in(size), out(size);
  std::iota(in.begin(), in.end(), 0);
  MPI_Group_translate_ranks(group, size, in.data(), world, out.data());
  MPI_Group_free(&group);
  MPI_Group_free(&world);
  return out;
}

// Every world rank's pid and host (filled when the world communicator is made), so a rank can
// tell whether a peer on its own host has died.
struct Peer {
  int pid = 0;
  uint64_t host = 0;
};
std::vector<Peer>& world_peers() {
  static std::vector<Peer> peers;
  return peers;
}

uint64_t host_hash() {
  char name[256] = {0};
  ::gethostname(name, sizeof(name) - 1);
  return std::hash<std::string>()(name);
}

// A pid that no longer runs, or a zombie its launcher has not reaped yet.
bool process_gone(int pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_s, comm, state;
  return stat >> pid_s >> comm >> state && state == "Z";
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (int r : ranks) s += (s.empty() ? "" : ", ") + std::to_string(r);
  return s;
}

// The collective has not completed within parallel.timeout_s: find which ranks are not waiting in
// it (each waiting rank answers within a few seconds), say so in one line, end the whole job.
[[noreturn]] void end_stalled_job(MpiCommunicator::Handle& h, int rank, int size, const char* what, double timeout) {
  const int64_t mine = h.seq;
  std::vector<int64_t> note(size, mine);
  for (int p = 0; p < size; ++p) {
    if (p == rank) continue;
    MPI_Request r;
    if (MPI_Isend(&note[p], 1, MPI_INT64_T, p, kAskTag, h.side, &r) == MPI_SUCCESS) MPI_Request_free(&r);
  }
  std::vector<int64_t> here(size, -1);
  here[rank] = mine;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until) {
    answer_asks(h);
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kHereTag, h.side, &flag, &st) == MPI_SUCCESS && flag) {
      MPI_Recv(&here[st.MPI_SOURCE], 1, MPI_INT64_T, st.MPI_SOURCE, kHereTag, h.side, MPI_STATUS_IGNORE);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  const auto world = world_ranks(h.comm, size);
  std::vector<int> missing, elsewhere;
  for (int p = 0; p < size; ++p) {
    if (here[p] < 0) missing.push_back(world[p]);
    else if (here[p] != mine) elsewhere.push_back(world[p]);
  }
  std::ostringstream line;
  line << "[rank " << world[rank] << "] error: " << what << " among world ranks " << rank_list(world)
       << " did not complete within parallel.timeout_s=" << timeout << " at step " << current_step()
       << "; ranks that did not arrive: "
       << (missing.empty() ? "none" : rank_list(missing) + " (stalled, lost or still computing)");
  if (!elsewhere.empty()) line << "; waiting in another collective: " << rank_list(elsewhere);
  std::fprintf(stderr, "%s\n", line.str().c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::abort();
}

// Waits for the requests of collective `what`, answering other ranks' timeout notes meanwhile;
// past parallel.timeout_s the job ends (end_stalled_job). Spins first (most collectives are
// short), then yields the core, then naps, so oversubscribed ranks do not starve each other.
// Asked to stop while waiting: if a peer of this collective on this host has died, the launcher is
// tearing the job down; name the lost rank in one line and end now.
void report_lost_peer(MpiCommunicator::Handle& h, int size, const char* what) {
  const auto& peers = world_peers();
  if (peers.empty()) return;
  const auto world = world_ranks(h.comm, size);
  const uint64_t here = host_hash();
  std::vector<int> lost;
  for (int w : world)
    if (w >= 0 && w < static_cast<int>(peers.size()) && peers[w].host == here && process_gone(peers[w].pid))
      lost.push_back(w);
  if (lost.empty()) return;
  int me = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  std::fprintf(stderr, "[rank %d] error: world rank %s was lost (its process is gone) at step %lld, while rank %d "
               "waited for it in %s; the job ends\n", me, rank_list(lost).c_str(),
               static_cast<long long>(current_step()), me, what);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 4);
}

void wait_requests(MpiCommunicator::Handle& h, std::vector<MPI_Request>& requests, const char* what, int rank,
                   int size) {
  if (requests.empty()) return;
  const double timeout = collective_timeout();
  const auto start = std::chrono::steady_clock::now();
  double lost_checked_at = 0;
  for (uint64_t spin = 0;; ++spin) {
    int done = 0;
    check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
    if (done) break;
    if (spin < 1000) continue;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (spin % 64 == 0) answer_asks(h);
    if (timeout > 0 && waited > timeout) end_stalled_job(h, rank, size, what, timeout);
    if (waited - lost_checked_at > 0.1 && stop_was_requested()) {
      lost_checked_at = waited;
      report_lost_peer(h, size, what);
    }
    if (waited < 0.01)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  requests.clear();
}

// Starts the (chunked) in-place MPI_Iallreduce of `t`; the caller waits for the requests.
std::vector<MPI_Request> start_allreduce(MpiCommunicator::Handle& h, torch::Tensor& t, ReduceOp op) {
  ++h.seq;
  const MPI_Datatype type = element_type(t.scalar_type());
  const MPI_Op mpi_op = reduce_op(t.scalar_type(), op);
  char* base = static_cast<char*>(t.data_ptr());
  std::vector<MPI_Request> requests;
  for (int64_t off = 0; off < t.numel(); off += kMaxChunk) {
    const int count = static_cast<int>(std::min(kMaxChunk, t.numel() - off));
    requests.push_back(MPI_REQUEST_NULL);
    check(MPI_Iallreduce(MPI_IN_PLACE, base + off * t.element_size(), count, type, mpi_op, h.comm, &requests.back()),
          "MPI_Iallreduce");
  }
  return requests;
}

// Requests of one (possibly chunked) MPI_Iallreduce; holds the tensor so its memory outlives them.
class MpiWork final : public Work {
 public:
  MpiWork(std::vector<MPI_Request> requests, torch::Tensor tensor, MpiCommunicator::Handle* h, int rank, int size)
      : requests_(std::move(requests)), tensor_(std::move(tensor)), h_(h), rank_(rank), size_(size) {}
  ~MpiWork() override {
    // Never let MPI write into freed memory: an abandoned request is completed here.
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!requests_.empty() && !finalized)
      MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
  }
  void wait() override {
    wait_requests(*h_, requests_, "allreduce", rank_, size_);
    tensor_ = torch::Tensor();
  }

 private:
  std::vector<MPI_Request> requests_;
  torch::Tensor tensor_;
  MpiCommunicator::Handle* h_;  // the communicator outlives the work it starts
  int rank_, size_;
};

class DoneWork final : public Work {
 public:
  void wait() override {}
};

}  // namespace mpi_comm_detail

// Qualified below: a using-directive would leak into the other files of a unity batch.
namespace mcd = mpi_comm_detail;

std::shared_ptr<MpiCommunicator> MpiCommunicator::world() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  DIST_ASSERT(initialized, "MpiCommunicator::world() before MPI_Init (call Runtime::init first)");
  auto handle = std::make_unique<Handle>();
  mcd::check(MPI_Comm_dup(MPI_COMM_WORLD, &handle->comm), "MPI_Comm_dup");
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const mcd::Peer me{static_cast<int>(::getpid()), mcd::host_hash()};
  mcd::world_peers().resize(size);
  mcd::check(MPI_Allgather(&me, sizeof(mcd::Peer), MPI_BYTE, mcd::world_peers().data(), sizeof(mcd::Peer), MPI_BYTE,
                           MPI_COMM_WORLD),
             "MPI_Allgather");
  return std::make_shared<MpiCommunicator>(std::move(handle));
}

MpiCommunicator::MpiCommunicator(std::unique_ptr<Handle> handle) : handle_(std::move(handle)) {
  DIST_ASSERT(handle_ && handle_->comm != MPI_COMM_NULL, "MpiCommunicator from a null MPI_Comm");
  mcd::check(MPI_Comm_rank(handle_->comm, &rank_), "MPI_Comm_rank");
  mcd::check(MPI_Comm_size(handle_->comm, &size_), "MPI_Comm_size");
  mcd::check(MPI_Comm_dup(handle_->comm, &handle_->side), "MPI_Comm_dup");
  mcd::check(MPI_Comm_set_errhandler(handle_->side, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
}

MpiCommunicator::~MpiCommunicator() {
  // Communicators held past Runtime::finalize() (e.g. by a Mesh in a static) are left to MPI.
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) {
    MPI_Comm_free(&handle_->side);
    MPI_Comm_free(&handle_->comm);
  }
}

void MpiCommunicator::allreduce(torch::Tensor& t, ReduceOp op) {
  mcd::check_cpu(t, "allreduce", true);
  if (size_ == 1 || t.numel() == 0) return;
  std::vector<MPI_Request> requests = mcd::start_allreduce(*handle_, t, op);
  mcd::wait_requests(*handle_, requests, "allreduce", rank_, size_);
}

std::unique_ptr<Work> MpiCommunicator::allreduce_async(torch::Tensor& t, ReduceOp op) {
  mcd::check_cpu(t, "allreduce_async", true);
  if (size_ == 1 || t.numel() == 0) return std::make_unique<mcd::DoneWork>();
  return std::make_unique<mcd::MpiWork>(mcd::start_allreduce(*handle_, t, op), t, handle_.get(), rank_, size_);
}

void MpiCommunicator::broadcast(torch::Tensor& t, int root) {
  mcd::check_cpu(t, "broadcast", true);
  DIST_ASSERT(root >= 0 && root < size_, "broadcast root ", root, " outside a group of ", size_);
  if (size_ == 1) return;
  ++handle_->seq;
  char* base = static_cast<char*>(t.data_ptr());
  const int64_t bytes = t.numel() * t.element_size();
  std::vector<MPI_Request> requests;
  for (int64_t off = 0; off < bytes; off += mcd::kMaxChunk) {
    const int count = static_cast<int>(std::min(mcd::kMaxChunk, bytes - off));
    requests.push_back(MPI_REQUEST_NULL);
    mcd::check(MPI_Ibcast(base + off, count, MPI_BYTE, root, handle_->comm, &requests.back()), "MPI_Ibcast");
  }
  mcd::wait_requests(*handle_, requests, "broadcast", rank_, size_);
}

torch::Tensor MpiCommunicator::allgather(const torch::Tensor& t) {
  mcd::check_cpu(t, "allgather", false);
  DIST_ASSERT(t.dim() >= 1, "allgather needs a tensor with a dim 0, got a scalar");
  const torch::Tensor src = t.contiguous();
  if (size_ == 1) return src.clone();
  // Every rank's (rows, row bytes): rows may differ, the row layout may not.
  ++handle_->seq;
  int64_t mine[2] = {src.size(0), mcd::row_bytes(src)};
  std::vector<int64_t> all(2 * size_);
  std::vector<MPI_Request> requests(1);
  mcd::check(MPI_Iallgather(mine, 2, MPI_INT64_T, all.data(), 2, MPI_INT64_T, handle_->comm, &requests[0]),
             "MPI_Iallgather");
  mcd::wait_requests(*handle_, requests, "allgather", rank_, size_);
  std::vector<int> counts(size_), displs(size_);
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) {
    DIST_ASSERT(all[2 * r + 1] == mine[1], "allgather: rank ", r, " sends rows of ", all[2 * r + 1],
                " bytes, rank ", rank_, " rows of ", mine[1], " bytes");
    counts[r] = mcd::to_int(all[2 * r], "allgather rows");
    displs[r] = mcd::to_int(total, "allgather rows");
    total += all[2 * r];
  }
  torch::Tensor out = torch::empty(shape_with_rows(src, total), src.options());
  if (mine[1] == 0 || total == 0) return out;
  mcd::RowType row(mine[1]);
  requests.assign(1, MPI_REQUEST_NULL);
  mcd::check(MPI_Iallgatherv(src.data_ptr(), counts[rank_], row.get(), out.data_ptr(), counts.data(), displs.data(),
                             row.get(), handle_->comm, &requests[0]),
             "MPI_Iallgatherv");
  mcd::wait_requests(*handle_, requests, "allgather", rank_, size_);
  return out;
}

torch::Tensor MpiCommunicator::reduce_scatter(const torch::Tensor& t, ReduceOp op) {
  mcd::check_cpu(t, "reduce_scatter", false);
  DIST_ASSERT(t.dim() >= 1 && t.size(0) % size_ == 0, "reduce_scatter: dim 0 of ", t.sizes(),
              " is not divisible by the group size ", size_);
  const torch::Tensor src = t.contiguous();
  if (size_ == 1) return src.clone();
  torch::Tensor out = torch::empty(shape_with_rows(src, src.size(0) / size_), src.options());
  if (out.numel() == 0) return out;
  ++handle_->seq;
  std::vector<MPI_Request> requests(1);
  mcd::check(MPI_Ireduce_scatter_block(src.data_ptr(), out.data_ptr(), mcd::to_int(out.numel(), "reduce_scatter block"),
                                       mcd::element_type(src.scalar_type()), mcd::reduce_op(src.scalar_type(), op),
                                       handle_->comm, &requests[0]),
             "MPI_Ireduce_scatter_block");
  mcd::wait_requests(*handle_, requests, "reduce_scatter", rank_, size_);
  return out;
}

torch::Tensor MpiCommunicator::all_to_all(const torch::Tensor& t, const std::vector<int64_t>& send_counts,
                                          const std::vector<int64_t>& recv_counts) {
  mcd::check_cpu(t, "all_to_all", false);
  DIST_ASSERT(t.dim() >= 1, "all_to_all needs a tensor with a dim 0, got a scalar");
  DIST_ASSERT(static_cast<int>(send_counts.size()) == size_ && static_cast<int>(recv_counts.size()) == size_,
              "all_to_all: ", send_counts.size(), " send and ", recv_counts.size(), " recv counts for a group of ",
              size_);
  const int64_t send_total = std::accumulate(send_counts.begin(), send_counts.end(), int64_t{0});
  const int64_t recv_total = std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0});
  DIST_ASSERT(send_total == t.size(0), "all_to_all: send counts sum to ", send_total, " but the tensor has ",
              t.size(0), " rows");
  const torch::Tensor src = t.contiguous();
  torch::Tensor out = torch::empty(shape_with_rows(src, recv_total), src.options());
  const int64_t bytes = mcd::row_bytes(src);
  if (bytes == 0) return out;
  std::vector<int> scounts(size_), sdispls(size_), rcounts(size_), rdispls(size_);
  int64_t soff = 0, roff = 0;
  for (int r = 0; r < size_; ++r) {
    scounts[r] = mcd::to_int(send_counts[r], "all_to_all send count");
    rcounts[r] = mcd::to_int(recv_counts[r], "all_to_all recv count");
    sdispls[r] = mcd::to_int(soff, "all_to_all send offset");
    rdispls[r] = mcd::to_int(roff, "all_to_all recv offset");
    soff += send_counts[r];
    roff += recv_counts[r];
  }
  mcd::RowType row(bytes);
  ++handle_->seq;
  std::vector<MPI_Request> requests(1);
  mcd::check(MPI_Ialltoallv(src.data_ptr(), scounts.data(), sdispls.data(), row.get(), out.data_ptr(), rcounts.data(),
                            rdispls.data(), row.get(), handle_->comm, &requests[0]),
             "MPI_Ialltoallv");
  mcd::wait_requests(*handle_, requests, "all_to_all", rank_, size_);
  return out;
}

void MpiCommunicator::barrier() {
  if (size_ == 1) return;
  ++handle_->seq;
  std::vector<MPI_Request> requests(1);
  mcd::check(MPI_Ibarrier(handle_->comm, &requests[0]), "MPI_Ibarrier");
  mcd::wait_requests(*handle_, requests, "barrier", rank_, size_);
}

std::shared_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  DIST_ASSERT(color >= 0, "split color must be >= 0, got ", color);
  auto handle = std::make_unique<Handle>();
  mcd::check(MPI_Comm_split(handle_->comm, color, key, &handle->comm), "MPI_Comm_split");
  return std::make_shared<MpiCommunicator>(std::move(handle));
}

}  // namespace distillery::parallel

#endif  // DISTILLERY_WITH_MPI
