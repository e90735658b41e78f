#include "trainer/signals.h"

#include <atomic>
#include <csignal>

namespace distillery {
namespace {
std::atomic<bool> g_stop{false};
extern "C" void distillery_on_signal(int) { g_stop.store(true); }
}  // namespace

void install_stop_handlers() {
  std::signal(SIGTERM, distillery_on_signal);
  std::signal(SIGINT, distillery_on_signal);
  // mpirun forwards SIGUSR1 to every rank (SIGTERM it answers by killing them): the launchers turn
  // a SIGTERM or Ctrl-C into SIGUSR1, and Slurm's --signal=B:USR1@T warns before a time limit.
  std::signal(SIGUSR1, distillery_on_signal);
}
bool stop_requested() { return g_stop.load(); }
void request_stop() { g_stop.store(true); }
void reset_stop_request() { g_stop.store(false); }

}  // namespace distillery
