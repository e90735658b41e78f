// SIGTERM / SIGINT / SIGUSR1 (Slurm preemption, Ctrl-C, mpirun's forwarded signal; see
// docs/reliability.md) ask the loop to stop after the current step, save a checkpoint and exit 0.
// A second signal during the save is ignored.
#pragma once

namespace distillery {

void install_stop_handlers();
bool stop_requested();
void request_stop();  // what the handler does; also for tests
void reset_stop_request();

}  // namespace distillery
