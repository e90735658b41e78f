// How long a rank waits in one collective before it ends the job (parallel.timeout_s), and the
// training step the process is at, for that message. Process-wide: the trainer sets both, the
// communicators read them (MPI: parallel/mpi_communicator.cpp). See docs/reliability.md.
#pragma once

#include <cstdint>

namespace distillery::parallel {

// Seconds a collective may take before the job is ended (default 1800, PyTorch's NCCL default).
// <= 0 waits forever.
void set_collective_timeout(double seconds);
double collective_timeout();

// The optimizer step being computed (1-based; 0 during start-up), named by timeout messages.
void set_current_step(int64_t step);
int64_t current_step();

// Whether the process was asked to stop (the trainer's SIGTERM flag). A launcher that lost a rank
// sends the others SIGTERM and SIGKILL a moment later: a rank asked to stop while it waits in a
// collective checks whether a peer on its host has died, and if so names it before it goes.
void set_stop_check(bool (*stop_requested)());
bool stop_was_requested();

}  // namespace distillery::parallel
