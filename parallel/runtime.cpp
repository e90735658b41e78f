#include "parallel/runtime.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "parallel/mpi_communicator.h"
#include "parallel/nccl_communicator.h"
#include "common/error.h"

#ifdef DISTILLERY_WITH_MPI
#include "parallel/mpi_include.h"
#endif

namespace distillery::parallel {

namespace runtime_detail {

int env_int(const std::function<const char*(const char*)>& getenv, const char* name, int fallback) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (end != v && *end == '\0' && n > 0 && n < (1L << 30)) ? static_cast<int>(n) : fallback;
}

Runtime* current_runtime = nullptr;  // set by Runtime::init

}  // namespace runtime_detail

LaunchInfo detect_launch(const std::function<const char*(const char*)>& getenv) {
  auto set = [&](const char* name) { return getenv(name) != nullptr; };
  const bool srun_step = set("SLURM_STEP_ID") || set("SLURM_STEPID");
  LaunchInfo info;
  if (set("OMPI_COMM_WORLD_SIZE")) {
    // Open MPI's mpirun/mpiexec (also when srun runs `mpirun` in a batch step).
    info = {true, "mpirun", runtime_detail::env_int(getenv, "OMPI_COMM_WORLD_SIZE", 1)};
  } else if (set("PMIX_RANK")) {
    // srun --mpi=pmix, or another PMIx launcher (prterun).
    info = {true, srun_step ? "srun" : "pmix", runtime_detail::env_int(getenv, "SLURM_STEP_NUM_TASKS", 1)};
  } else if (set("PMI_SIZE") || set("PMI_RANK")) {
    // srun --mpi=pmi2, or a PMI-1/2 launcher (MPICH's hydra).
    info = {true, srun_step ? "srun" : "pmi", runtime_detail::env_int(getenv, "PMI_SIZE", 1)};
  } else {
    // srun without a PMI plugin starts N processes that cannot find each other. Inside an
    // sbatch script without srun there is no step, so a plain single process is right.
    const int step_tasks = runtime_detail::env_int(getenv, "SLURM_STEP_NUM_TASKS", 1);
    DIST_CHECK(step_tasks <= 1, "srun started ", step_tasks,
               " tasks without a PMI plugin, so they cannot form one MPI job: run `srun --mpi=pmix ...` "
               "(or --mpi=pmi2; `srun --mpi=list` shows what your Slurm offers), see docs/parallelism.md");
    info = {false, "single", 1};
  }
  return info;
}

Runtime& Runtime::init(int* argc, char*** argv) {
  static Runtime rt;
  if (rt.initialized_) return rt;
  rt.launch = detect_launch([](const char* name) { return std::getenv(name); });

  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) == 0) rt.hostname = host;

  if (rt.launch.mpi) {
#ifdef DISTILLERY_WITH_MPI
    int provided = 0;
    // MULTIPLE: autograd hooks may start collectives from the backward thread.
    MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    rt.mpi = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &rt.world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &rt.world_size);
    MPI_Comm node;  // the ranks sharing this host's memory
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rt.world_rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &rt.local_rank);
    MPI_Comm_size(node, &rt.local_size);
    MPI_Comm_free(&node);
    rt.world = MpiCommunicator::world();
#else
    DIST_FAIL("started by ", rt.launch.launcher, " with ", rt.launch.expected_size,
              " ranks, but this distillery was built without MPI: install Open MPI (libopenmpi-dev) and rebuild");
#endif
  } else {
    rt.world = std::make_shared<LocalCommunicator>();
  }
  rt.initialized_ = true;
  runtime_detail::current_runtime = &rt;
  return rt;
}

Runtime& Runtime::get() {
  DIST_ASSERT(runtime_detail::current_runtime != nullptr, "Runtime::get() before Runtime::init()");
  return *runtime_detail::current_runtime;
}

std::shared_ptr<Communicator> Runtime::world_for(const torch::Device& device) {
  DIST_ASSERT(initialized_ && !finalized_, "Runtime::world_for outside init()..finalize()");
  if (device.is_cpu()) return world;
  DIST_CHECK(device.is_cuda(), "no communicator for tensors on ", device, " (cpu and cuda are supported)");
  const int index = device.has_index() ? device.index() : local_rank;
  auto& comm = device_worlds_[index];
  if (comm) return comm;
  // One rank: every collective is the identity, on any device.
  if (world_size == 1) return comm = std::make_shared<LocalCommunicator>();
#ifdef DISTILLERY_WITH_NCCL
  return comm = std::make_shared<NcclCommunicator>(world, torch::Device(torch::kCUDA, index));
#else
  DIST_FAIL("a ", world_size, "-rank run on ", device,
            " needs NCCL, and this distillery was built without it: rebuild with NCCL found "
            "(cmake -DNCCL_ROOT=<dir with include/nccl.h and lib/libnccl.so*>), see docs/parallelism.md");
#endif
}

std::string Runtime::rank_tag() const {
  if (world_size <= 1) return "";
  return detail::concat("[rank ", world_rank, "/", world_size, "] ");
}

void Runtime::abort_all(int code) {
  std::fflush(stdout);
  std::cout.flush();
  std::cerr << rank_tag() << "aborting all " << world_size << " rank" << (world_size == 1 ? "" : "s")
            << " (exit code " << code << ")" << std::endl;
#ifdef DISTILLERY_WITH_MPI
  if (mpi && !finalized_ && world_size > 1) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this only guards a broken MPI.
  }
#endif
  finalize();
  std::exit(code);
}

void Runtime::finalize() {
  if (!initialized_ || finalized_) return;
  finalized_ = true;
  // Communicators still held elsewhere see MPI_Finalized and leave their handles to MPI.
  device_worlds_.clear();
  world.reset();
#ifdef DISTILLERY_WITH_MPI
  if (mpi) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  }
#endif
}

}  // namespace distillery::parallel
