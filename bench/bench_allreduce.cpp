// Allreduce bandwidth of distillery's MPI communicator on CPU tensors, 1 KB .. 64 MB.
//
//   mpirun -np 2 build/bin/bench_allreduce [--max-mb 64] [--dtype float32|bfloat16] [--async]
//
// Prints one row per size: time per allreduce (the slowest rank's mean), algorithm bandwidth
// (bytes / time) and bus bandwidth (algbw * 2(n-1)/n, the per-link traffic of a ring
// allreduce, comparable across rank counts as in nccl-tests). Results: docs/benchmarks.md;
// bench_allreduce_gloo.py measures torch.distributed's gloo backend the same way.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "parallel/runtime.h"

namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace distillery::parallel;
  Runtime& rt = Runtime::init(&argc, &argv);
  torch::set_num_threads(1);
  int64_t max_mb = 64;
  torch::ScalarType dtype = torch::kFloat;
  bool async = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--max-mb" && i + 1 < argc) max_mb = std::stoll(argv[++i]);
    else if (arg == "--dtype" && i + 1 < argc) dtype = std::string(argv[++i]) == "bfloat16" ? torch::kBFloat16 : torch::kFloat;
    else if (arg == "--async") async = true;
    else {
      if (rt.world_rank == 0) std::fprintf(stderr, "usage: bench_allreduce [--max-mb N] [--dtype float32|bfloat16] [--async]\n");
      rt.finalize();
      return 2;
    }
  }
  Communicator& comm = *rt.world;
  const int n = comm.size();
  if (rt.world_rank == 0) {
    std::printf("# allreduce sum, %s, %s, %d ranks, backend %s\n", dtype == torch::kFloat ? "float32" : "bfloat16",
                async ? "allreduce_async+wait" : "allreduce", n, comm.backend().c_str());
    std::printf("%10s %8s %12s %12s %12s\n", "bytes", "iters", "time_us", "algbw_GB/s", "busbw_GB/s");
  }
  const int64_t elem = c10::elementSize(dtype);
  for (int64_t bytes = 1024; bytes <= (max_mb << 20); bytes *= 2) {
    torch::Tensor t = torch::ones({bytes / elem}, dtype);
    auto once = [&] {
      if (async) comm.allreduce_async(t)->wait();
      else comm.allreduce(t);
    };
    for (int i = 0; i < 3; ++i) once();
    // Iterations for ~0.3 s, agreed on by all ranks (rank 0's estimate).
    comm.barrier();
    double t0 = seconds_now();
    once();
    torch::Tensor iters_t = torch::tensor({static_cast<int64_t>(std::max(5.0, 0.3 / std::max(seconds_now() - t0, 1e-7)))});
    comm.broadcast(iters_t, 0);
    const int64_t iters = std::min<int64_t>(iters_t.item<int64_t>(), 20000);
    comm.barrier();
    t0 = seconds_now();
    for (int64_t i = 0; i < iters; ++i) once();
    torch::Tensor elapsed = torch::tensor({(seconds_now() - t0) / iters}, torch::kDouble);
    comm.allreduce(elapsed, ReduceOp::kMax);
    const double sec = elapsed.item<double>();
    const double algbw = bytes / sec / 1e9;
    if (rt.world_rank == 0)
      std::printf("%10lld %8lld %12.1f %12.3f %12.3f\n", static_cast<long long>(bytes), static_cast<long long>(iters),
                  sec * 1e6, algbw, algbw * 2.0 * (n - 1) / n);
  }
  rt.finalize();
  return 0;
}
