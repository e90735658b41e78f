// metrics.jsonl (one JSON object per optimizer step) and the progress line on stderr.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace distillery {

class MetricsLog {
 public:
  // Opens run_dir/metrics.jsonl for appending; lines with step > keep_through_step (left by a
  // run that died after its last checkpoint) are removed first. enabled=false: a no-op (non-zero ranks).
  MetricsLog(const std::string& run_dir, int64_t keep_through_step, bool enabled);
  ~MetricsLog();
  void write(const nlohmann::json& record);

 private:
  std::FILE* f_ = nullptr;
};

// "step 12/100 | loss 2.3456 | lr 1.00e-04 | grad_norm 0.812 | 5.1k tok/s | ETA 1m23s"
std::string progress_line(int64_t step, int64_t max_steps, double loss, double lr, double grad_norm,
                          double tokens_per_s, double eta_s);
std::string format_duration(double seconds);

}  // namespace distillery
