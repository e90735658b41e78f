#include "parallel/collective_timeout.h"

#include <atomic>

namespace distillery::parallel {
namespace {
std::atomic<double> g_timeout_s{1800.0};
std::atomic<int64_t> g_step{0};
std::atomic<bool (*)()> g_stop_check{nullptr};
}  // namespace

void set_stop_check(bool (*stop_requested)()) { g_stop_check.store(stop_requested); }
bool stop_was_requested() {
  auto* check = g_stop_check.load();
  return check != nullptr && check();
}

void set_collective_timeout(double seconds) { g_timeout_s.store(seconds); }
double collective_timeout() { return g_timeout_s.load(); }
void set_current_step(int64_t step) { g_step.store(step); }
int64_t current_step() { return g_step.load(); }

}  // namespace distillery::parallel
