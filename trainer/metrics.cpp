#include "trainer/metrics.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/fs_util.h"

namespace distillery {

MetricsLog::MetricsLog(const std::string& run_dir, int64_t keep_through_step, bool enabled) {
  if (!enabled) return;
  const std::string path = (std::filesystem::path(run_dir) / "metrics.jsonl").string();
  if (std::filesystem::exists(path)) {
    std::ifstream in(path);
    std::string kept, line;
    while (std::getline(in, line)) {
      try {
        auto j = nlohmann::json::parse(line);
        if (j.value("step", int64_t{0}) <= keep_through_step) kept += line + "\n";
      } catch (const nlohmann::json::exception&) {
        // A line cut short by a kill: drop it.
      }
    }
    write_text_file(path, kept);
  }
  f_ = std::fopen(path.c_str(), "a");
  DIST_CHECK(f_, path, ": cannot open for writing");
}

MetricsLog::~MetricsLog() {
  if (f_) std::fclose(f_);
}

void MetricsLog::write(const nlohmann::json& record) {
  if (!f_) return;
  const std::string line = record.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), f_);
  std::fflush(f_);
}

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  std::ostringstream o;
  if (t >= 3600) o << t / 3600 << "h" << (t % 3600) / 60 << "m";
  else if (t >= 60) o << t / 60 << "m" << t % 60 << "s";
  else o << t << "s";
  return o.str();
}

std::string progress_line(int64_t step, int64_t max_steps, double loss, double lr, double grad_norm,
                          double tokens_per_s, double eta_s) {
  char buf[256];
  const char* unit = "";
  double tps = tokens_per_s;
  if (tps >= 1e6) tps /= 1e6, unit = "M";
  else if (tps >= 1e3) tps /= 1e3, unit = "k";
  std::snprintf(buf, sizeof(buf), "step %lld/%lld | loss %.4f | lr %.2e | grad_norm %.3f | %.1f%s tok/s | ETA %s",
                static_cast<long long>(step), static_cast<long long>(max_steps), loss, lr, grad_norm, tps, unit,
                format_duration(eta_s).c_str());
  return buf;
}

}  // namespace distillery
