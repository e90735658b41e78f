// The process's place in a run: MPI bootstrap, world rank/size, ranks on this host, and the
// world communicator. A process started by mpirun or srun (seen from the launcher's environment)
// initialises MPI; any other process is a single-rank run that never touches MPI.
//
//   int main(int argc, char** argv) {
//     auto& rt = parallel::Runtime::init(&argc, &argv);
//     try { ... } catch (const std::exception& e) { print(rt.rank_tag(), e.what()); rt.abort_all(1); }
//     rt.finalize();
//   }
//
// Failure policy: a rank that fails calls abort_all(), which ends every rank of the job within
// seconds (MPI_Abort) instead of leaving the others blocked in a collective. finalize() is for
// the success path only: it waits for every rank.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "parallel/communicator.h"

namespace distillery::parallel {

// What the launcher told this process, read before MPI_Init from its environment.
struct LaunchInfo {
  bool mpi = false;          // started by an MPI launcher: initialise MPI
  std::string launcher;      // "single", "mpirun", "srun", "pmix", "pmi"
  int expected_size = 1;     // world size the launcher announced (1 when unknown)
};

// `getenv` returns nullptr for unset names. Throws UserError for srun without a PMI plugin,
// which would otherwise start N independent single-rank runs writing to the same directory.
LaunchInfo detect_launch(const std::function<const char*(const char*)>& getenv);

struct Runtime {
  // Initialises MPI (MPI_THREAD_MULTIPLE requested) when detect_launch() says so, else sets up a
  // single process with a LocalCommunicator. Idempotent: later calls return the same Runtime.
  static Runtime& init(int* argc, char*** argv);
  // The Runtime set up by init(); an internal error before it.
  static Runtime& get();

  int world_rank = 0;
  int world_size = 1;
  int local_rank = 0;  // rank among the processes on this host (picks the GPU)
  int local_size = 1;
  std::string hostname;
  LaunchInfo launch;
  bool mpi = false;  // MPI_Init was called by this Runtime
  // All ranks, for CPU tensors: MPI, or a LocalCommunicator in a single process.
  std::shared_ptr<Communicator> world;

  // All ranks, for tensors on `device`: `world` for CPU; for CUDA a NCCL communicator made on
  // first use (collective: every rank must ask for the same device kind together). UserError
  // on a CUDA multi-rank run of a build without NCCL.
  std::shared_ptr<Communicator> world_for(const torch::Device& device);

  // "[rank 3/8] " in a multi-rank run, "" alone: prefix for lines a rank prints.
  std::string rank_tag() const;

  // Ends every rank of the job with `code`: MPI_Abort in a multi-rank run, std::exit otherwise.
  // Prints "<tag>aborting all N ranks (exit code C)" to stderr first.
  [[noreturn]] void abort_all(int code);

  // Success path: releases communicators and calls MPI_Finalize (which waits for all ranks).
  // Idempotent; a no-op in a single process.
  void finalize();

 private:
  Runtime() = default;
  bool initialized_ = false;
  bool finalized_ = false;
  std::map<int, std::shared_ptr<Communicator>> device_worlds_;  // CUDA device index -> its world
};

}  // namespace distillery::parallel
