#include "parallel/grad_reducer.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <map>
#include <mutex>

#include "common/error.h"

namespace distillery::parallel {

struct GradReducer::State {
  struct Param {
    std::string name;
    torch::Tensor tensor;
    int bucket = 0;
    int64_t offset = 0;  // into the bucket's flat buffer, in elements
    bool ready = false;  // its gradient is final in this step's backward
  };
  struct Bucket {
    std::vector<int> params;
    torch::Tensor flat;
    int pending = 0;  // parameters whose gradient is not final yet
    bool complete = false;
    std::unique_ptr<Work> work;
  };

  std::shared_ptr<Communicator> comm;
  std::vector<Param> params;
  std::vector<Bucket> buckets;  // in launch order
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks;
  std::mutex mutex;  // hooks may run on autograd device threads
  bool armed = false;
  size_t next_launch = 0;
  Stats stats;

  void on_ready(int index);
  void launch_completed(bool from_hook);
};

namespace grad_reducer_detail {

// Runs after AccumulateGrad has added this backward's contribution to the parameter's .grad.
class ReadyHook final : public torch::autograd::FunctionPostHook {
 public:
  ReadyHook(std::weak_ptr<GradReducer::State> state, int index) : state_(std::move(state)), index_(index) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    if (auto state = state_.lock()) state->on_ready(index_);
    return outputs;
  }

 private:
  std::weak_ptr<GradReducer::State> state_;
  int index_;
};

std::string placement(const torch::Tensor& t) {
  return detail::concat(t.scalar_type(), "@", t.device());
}

// Groups tensors, visited in `order`, into buckets of at most `cap_bytes` (a larger tensor gets
// a bucket of its own), one open bucket per dtype and device: a bucket is flattened into one
// buffer. Buckets are numbered by when they were opened.
std::vector<std::vector<int>> make_buckets(const std::vector<torch::Tensor>& tensors, const std::vector<int>& order,
                                           int64_t cap_bytes) {
  std::vector<std::vector<int>> buckets;
  std::vector<int64_t> bytes;
  std::map<std::string, size_t> open;
  for (int i : order) {
    const torch::Tensor& t = tensors[i];
    const int64_t n = t.numel() * t.element_size();
    const std::string key = placement(t);
    auto it = open.find(key);
    if (it != open.end() && bytes[it->second] > 0 && bytes[it->second] + n > cap_bytes) {
      open.erase(it);
      it = open.end();
    }
    if (it == open.end()) {
      it = open.emplace(key, buckets.size()).first;
      buckets.emplace_back();
      bytes.push_back(0);
    }
    buckets[it->second].push_back(i);
    bytes[it->second] += n;
  }
  return buckets;
}

torch::Tensor slice_of(const torch::Tensor& flat, int64_t offset, const torch::Tensor& like) {
  return flat.narrow(0, offset, like.numel()).view(like.sizes());
}

}  // namespace grad_reducer_detail

namespace grd = grad_reducer_detail;

NamedTensors to_named_tensors(const torch::OrderedDict<std::string, torch::Tensor>& named) {
  NamedTensors out;
  out.reserve(named.size());
  for (const auto& item : named) out.emplace_back(item.key(), item.value());
  return out;
}

void GradReducer::State::on_ready(int index) {
  std::lock_guard<std::mutex> lock(mutex);
  if (!armed) return;
  Param& p = params[index];
  DIST_ASSERT(!p.ready, "GradReducer: parameter '", p.name,
              "' received its gradient twice in one backward (reentrant checkpointing or a second backward "
              "after begin_step(true)); its bucket was already being reduced");
  p.ready = true;
  Bucket& b = buckets[p.bucket];
  if (--b.pending == 0) {
    b.complete = true;
    launch_completed(true);
  }
}

// Starts every complete bucket that has all earlier buckets started: the same sequence on
// every rank, which MPI and NCCL need to match collectives.
void GradReducer::State::launch_completed(bool from_hook) {
  torch::NoGradGuard no_grad;
  while (next_launch < buckets.size() && buckets[next_launch].complete) {
    Bucket& b = buckets[next_launch++];
    for (int i : b.params) {
      const Param& p = params[i];
      const torch::Tensor& grad = p.tensor.grad();
      torch::Tensor slice = grd::slice_of(b.flat, p.offset, p.tensor);
      if (grad.defined()) {
        DIST_ASSERT(grad.layout() == torch::kStrided, "GradReducer: parameter '", p.name,
                    "' has a sparse gradient; use dense gradients with data parallelism");
        slice.copy_(grad);
      } else {
        slice.zero_();  // no gradient on this rank; other ranks' may be non-zero
      }
    }
    b.work = comm->allreduce_async(b.flat, ReduceOp::kSum);
    if (from_hook) ++stats.launched_during_backward;
  }
}

GradReducer::GradReducer(const NamedTensors& params, std::shared_ptr<Communicator> dp, double bucket_mb)
    : state_(std::make_shared<State>()) {
  DIST_ASSERT(dp != nullptr, "GradReducer without a dp communicator");
  DIST_ASSERT(bucket_mb > 0, "GradReducer bucket size must be positive, got ", bucket_mb, " MB");
  State& s = *state_;
  s.comm = std::move(dp);
  std::vector<torch::Tensor> tensors;
  for (const auto& [name, tensor] : params) {
    DIST_ASSERT(tensor.defined(), "GradReducer: parameter '", name, "' is undefined");
    if (!tensor.requires_grad()) continue;
    DIST_ASSERT(tensor.is_leaf(), "GradReducer: parameter '", name, "' is not a leaf tensor");
    s.params.push_back({name, tensor});
    tensors.push_back(tensor);
  }
  std::vector<int> reverse(tensors.size());
  for (size_t i = 0; i < reverse.size(); ++i) reverse[i] = static_cast<int>(reverse.size() - 1 - i);
  const auto cap = static_cast<int64_t>(bucket_mb * 1024.0 * 1024.0);
  for (const auto& members : grd::make_buckets(tensors, reverse, cap)) {
    State::Bucket b;
    int64_t numel = 0;
    for (int i : members) {
      s.params[i].bucket = static_cast<int>(s.buckets.size());
      s.params[i].offset = numel;
      numel += tensors[i].numel();
      s.stats.bytes += tensors[i].numel() * tensors[i].element_size();
    }
    b.params = members;
    // One rank has nothing to reduce: no buffers, no hooks.
    if (s.comm->size() > 1) b.flat = torch::empty({numel}, tensors[members.front()].options().requires_grad(false));
    s.buckets.push_back(std::move(b));
  }
  s.stats.buckets = static_cast<int>(s.buckets.size());
  if (s.comm->size() == 1) return;
  for (size_t i = 0; i < s.params.size(); ++i) {
    // The accumulator is held here: a parameter keeps only a weak reference, and a new one
    // would be made (without our hook) if this one were freed.
    std::shared_ptr<torch::autograd::Node> acc = torch::autograd::impl::grad_accumulator(s.params[i].tensor);
    DIST_ASSERT(acc != nullptr, "GradReducer: no gradient accumulator for '", s.params[i].name, "'");
    const uintptr_t key = acc->add_post_hook(std::make_unique<grd::ReadyHook>(state_, static_cast<int>(i)));
    s.hooks.emplace_back(std::move(acc), key);
  }
}

GradReducer::~GradReducer() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  for (auto& [acc, key] : state_->hooks) acc->del_post_hook(key);
  for (auto& b : state_->buckets)
    if (b.work) b.work->wait();  // never free a buffer a collective still writes
}

void GradReducer::begin_step(bool sync) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.comm->size() == 1) return;
  DIST_ASSERT(!s.armed, "GradReducer::begin_step() after begin_step(true) without finish(): call finish() after "
              "the last micro-batch's backward");
  if (!sync) return;
  for (auto& p : s.params) p.ready = false;
  for (auto& b : s.buckets) {
    b.pending = static_cast<int>(b.params.size());
    b.complete = false;
  }
  s.next_launch = 0;
  s.stats.launched_during_backward = 0;
  s.armed = true;
}

void GradReducer::finish() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.comm->size() == 1) return;
  DIST_ASSERT(s.armed, "GradReducer::finish() without begin_step(true) before the last micro-batch's backward");
  // Backward is over, so every .grad is final, also those of parameters it never reached.
  for (auto& b : s.buckets) b.complete = true;
  s.launch_completed(false);
  torch::NoGradGuard no_grad;
  for (auto& b : s.buckets) {
    b.work->wait();
    b.work.reset();
    for (int i : b.params) {
      State::Param& p = s.params[i];
      torch::Tensor slice = grd::slice_of(b.flat, p.offset, p.tensor);
      torch::Tensor& grad = p.tensor.mutable_grad();
      if (grad.defined())
        grad.copy_(slice);
      else
        grad = slice.clone();
    }
  }
  s.armed = false;
}

const GradReducer::Stats& GradReducer::last_stats() const { return state_->stats; }

std::vector<std::vector<std::string>> GradReducer::bucket_names() const {
  std::vector<std::vector<std::string>> names;
  for (const auto& b : state_->buckets) {
    names.emplace_back();
    for (int i : b.params) names.back().push_back(state_->params[i].name);
  }
  return names;
}

void broadcast_parameters(const std::vector<torch::Tensor>& tensors, Communicator& comm, int root) {
  if (comm.size() == 1 || tensors.empty()) return;
  torch::NoGradGuard no_grad;
  std::vector<int> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) {
    DIST_ASSERT(tensors[i].defined(), "broadcast_parameters: tensor ", i, " is undefined");
    order[i] = static_cast<int>(i);
  }
  constexpr int64_t kChunkBytes = int64_t{64} << 20;
  for (const auto& members : grd::make_buckets(tensors, order, kChunkBytes)) {
    int64_t numel = 0;
    for (int i : members) numel += tensors[i].numel();
    const torch::TensorOptions options = tensors[members.front()].options().requires_grad(false);
    torch::Tensor flat;
    if (comm.rank() == root) {
      std::vector<torch::Tensor> parts;
      for (int i : members) parts.push_back(tensors[i].detach().reshape({-1}));
      flat = torch::cat(parts);
    } else {
      flat = torch::empty({numel}, options);
    }
    comm.broadcast(flat, root);
    int64_t offset = 0;
    for (int i : members) {
      torch::Tensor t = tensors[i];  // shares storage with the caller's tensor
      t.detach().copy_(grd::slice_of(flat, offset, t));
      offset += t.numel();
    }
  }
}

void broadcast_parameters(const NamedTensors& tensors, Communicator& comm, int root) {
  std::vector<torch::Tensor> plain;
  plain.reserve(tensors.size());
  for (const auto& item : tensors) plain.push_back(item.second);
  broadcast_parameters(plain, comm, root);
}

}  // namespace distillery::parallel
