#include "parallel/expert_dispatch.h"

#include <numeric>

#include "common/error.h"

namespace distillery::parallel {
namespace expert_dispatch_detail {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The communicator travels in ctx->saved_data as a raw pointer, as in tp_ops.cpp: the caller's
// shared_ptr (held by the model for its lifetime) outlives every graph built from it.
class AllToAll : public torch::autograd::Function<AllToAll> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const std::vector<int64_t>& send,
                               const std::vector<int64_t>& recv, int64_t comm) {
    ctx->saved_data["comm"] = comm;
    ctx->saved_data["send"] = send;
    ctx->saved_data["recv"] = recv;
    return reinterpret_cast<Communicator*>(comm)->all_to_all(x, send, recv);
  }
  // Row i of the output came from one row of one rank's x: its gradient goes back there, i.e.
  // the same exchange with the roles of send and receive swapped.
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    auto send = ctx->saved_data["send"].toIntVector();
    auto recv = ctx->saved_data["recv"].toIntVector();
    return {comm->all_to_all(g[0].contiguous(), recv, send), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

int64_t total(const int64_t* p, int64_t n, int64_t stride = 1) {
  int64_t s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[i * stride];
  return s;
}

// Where the received rows go to be grouped by local expert. Received rows come as blocks
// (source rank r, local expert i) of from[r][i] rows, r-major; run_grouped wants them i-major.
// Returns (perm, inv): grouped = received[perm], received = grouped[inv]. Loops run over the
// n*L blocks only; the per-row work is tensor ops.
std::pair<torch::Tensor, torch::Tensor> regroup(const torch::Tensor& from_counts, int64_t n, int64_t L, int64_t rows,
                                                const torch::Device& device) {
  const int64_t* from = from_counts.data_ptr<int64_t>();  // [n*L] on the CPU
  std::vector<int64_t> shift(n * L);  // grouped start - received start, per block
  int64_t received = 0;
  std::vector<int64_t> grouped_start(L);
  for (int64_t i = 0, g = 0; i < L; ++i) {
    grouped_start[i] = g;
    g += total(from + i, n, L);
  }
  for (int64_t r = 0; r < n; ++r)
    for (int64_t i = 0; i < L; ++i) {
      shift[r * L + i] = grouped_start[i] - received;
      grouped_start[i] += from[r * L + i];
      received += from[r * L + i];
    }
  auto opts = torch::TensorOptions().dtype(torch::kInt64);
  auto block = torch::repeat_interleave(from_counts);  // [rows]
  auto inv = torch::arange(rows, opts) + torch::tensor(shift, opts).index_select(0, block);                  // [rows]
  auto perm = torch::empty({rows}, opts).scatter_(0, inv, torch::arange(rows, opts));
  return {perm.to(device), inv.to(device)};
}

int64_t handle(const std::shared_ptr<Communicator>& c) { return reinterpret_cast<int64_t>(c.get()); }

}  // namespace expert_dispatch_detail

torch::Tensor all_to_all_autograd(const torch::Tensor& x, const std::vector<int64_t>& send_counts,
                                  const std::vector<int64_t>& recv_counts, const std::shared_ptr<Communicator>& comm) {
  if (!comm || comm->size() == 1) return x;
  if (!torch::GradMode::is_enabled() || !x.requires_grad()) return comm->all_to_all(x, send_counts, recv_counts);
  return expert_dispatch_detail::AllToAll::apply(x, send_counts, recv_counts, expert_dispatch_detail::handle(comm));
}

torch::Tensor expert_parallel_moe(const torch::Tensor& x, const torch::Tensor& experts, const torch::Tensor& weights,
                                  const LocalExperts& local, const std::shared_ptr<Communicator>& ep) {
  DIST_ASSERT(ep && ep->size() > 1, "expert_parallel_moe needs an ep group of two or more ranks");
  namespace d = expert_dispatch_detail;
  const int64_t n = ep->size(), L = local.count, E = n * L;
  DIST_ASSERT(local.first == ep->rank() * L, "expert_parallel_moe: rank ", ep->rank(), " of ", n, " holds experts [",
              local.first, ", ", local.first + L, "), expected [", ep->rank() * L, ", ", (ep->rank() + 1) * L, ")");
  DIST_ASSERT(x.dim() == 2 && experts.dim() == 2 && experts.size(0) == x.size(0) && weights.sizes() == experts.sizes(),
              "expert_parallel_moe: x ", x.sizes(), ", experts ", experts.sizes(), ", weights ", weights.sizes());
  const int64_t k = experts.size(1);

  // This rank's token slots sorted by expert, hence grouped by the rank that owns the expert.
  auto slots = experts.reshape({-1});                                       // [N*k]
  auto order = std::get<1>(torch::sort(slots, /*stable=*/true, 0, false));  // [S], S = N*k
  auto token = torch::div(order, k, "floor");                               // [S] token of each sorted slot
  auto per_expert = torch::bincount(slots, {}, E);                          // [E] slots sent to each expert
  DIST_ASSERT(per_expert.size(0) == E, "expert_parallel_moe: expert ids beyond the ", E, " experts");

  // Counts first: rank j learns, from every rank r, how many slots r sends to each of j's experts.
  const std::vector<int64_t> blocks(n, L);
  auto from = ep->all_to_all(per_expert, blocks, blocks).cpu().contiguous();  // [n*L] = [source rank, local expert]
  auto mine = per_expert.cpu().contiguous();
  std::vector<int64_t> send_counts(n), recv_counts(n), counts(L);
  for (int64_t r = 0; r < n; ++r) {
    send_counts[r] = d::total(mine.data_ptr<int64_t>() + r * L, L);
    recv_counts[r] = d::total(from.data_ptr<int64_t>() + r * L, L);
  }
  for (int64_t i = 0; i < L; ++i) counts[i] = d::total(from.data_ptr<int64_t>() + i, n, L);
  const int64_t rows = std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0});
  auto [perm, inv] = d::regroup(from, n, L, rows, x.device());

  auto received = all_to_all_autograd(x.index_select(0, token), send_counts, recv_counts, ep);  // [R, H] by source rank
  auto y = local.run_grouped(received.index_select(0, perm), counts);                          // [R, H] by local expert
  auto back = all_to_all_autograd(y.index_select(0, inv), recv_counts, send_counts, ep);        // [S, H] in slot order
  auto w = weights.reshape({-1}).index_select(0, order).unsqueeze(1);                          // [S, 1] fp32
  // Weighted and accumulated in fp32, as RoutedExpertsImpl::forward does.
  auto out = torch::zeros(x.sizes(), x.options().dtype(torch::kFloat32));
  return out.index_add(0, token, back.to(torch::kFloat32) * w).to(x.scalar_type());
}

}  // namespace distillery::parallel
