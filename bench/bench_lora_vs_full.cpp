// LoRA vs full fine-tuning on the CPU: peak resident memory and optimizer-step time of one mode per
// process (run both with bench/run_lora_vs_full.sh, which writes the table for docs/benchmarks.md).
//
//   bench_lora_vs_full --model DIR --mode lora|full [--steps N] [--batch B] [--seq T] [--r R]
//                      [--targets all-linear|q_proj,v_proj] [--dtype fp32|bf16]
//
// A step is what trainer/loop.cpp does: forward, fused lm_head + cross-entropy, backward, clip, AdamW.
// Prints one JSON line: mode, parameters, trainable, peak_rss_mib (VmHWM), step_s (median wall time),
// step_s_each, step_cpu_s (median process CPU time: steadier on a shared machine), tokens_per_s.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "models/peft/lora.h"
#include "models/hf_model.h"
#include "models/lm_head.h"
#include "trainer/optim.h"

using namespace distillery;

namespace {

// The process's resident-set high-water mark, from /proc/self/status (kB -> MiB).
double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

// User + system CPU seconds of this process: steadier than wall time on a shared machine.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string p; std::getline(ss, p, ',');) out.push_back(p);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a = {{"--mode", "lora"}, {"--steps", "4"}, {"--batch", "4"},  {"--seq", "256"},
                                          {"--r", "16"},      {"--targets", "all-linear"},          {"--dtype", "fp32"}};
  for (int i = 1; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
  if (!a.count("--model") || (a["--mode"] != "lora" && a["--mode"] != "full")) {
    std::cerr << "usage: bench_lora_vs_full --model DIR --mode lora|full [--steps N] [--batch B] [--seq T] [--r R]\n";
    return 2;
  }
  try {
    const bool lora = a["--mode"] == "lora";
    const int64_t steps = std::stoll(a["--steps"]), B = std::stoll(a["--batch"]), T = std::stoll(a["--seq"]);
    torch::manual_seed(0);
    CausalLM model = load_hf_model(a["--model"], parse_dtype(a["--dtype"]));
    if (lora) {
      LoraConfig cfg;
      cfg.r = std::stoll(a["--r"]);
      cfg.lora_alpha = 2.0 * cfg.r;
      cfg.target_modules = split(a["--targets"]);
      apply_lora(model, cfg, 0);
    }
    std::vector<std::pair<std::string, torch::Tensor>> named;
    int64_t total = 0, trainable = 0;
    for (auto& p : model->named_parameters()) {
      named.emplace_back(p.key(), p.value());
      total += p.value().numel();
      if (p.value().requires_grad()) trainable += p.value().numel();
    }
    OptimConfig oc;
    AdamW opt(named, oc);
    std::vector<torch::Tensor> params;
    for (auto& s : opt.slots()) params.push_back(s.param);
    const int64_t vocab = model->config().vocab_size;
    auto input = torch::randint(0, vocab, {B, T}, torch::kInt64);
    auto targets = torch::cat({input.narrow(1, 1, T - 1), torch::full({B, 1}, kIgnoreIndex, torch::kInt64)}, 1);
    model->train();
    std::vector<double> times, cpu_times;
    double loss_v = 0;
    for (int64_t s = 0; s <= steps; ++s) {  // step 0 warms up allocators and is not timed
      const auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_seconds();
      opt.zero_grad();
      auto hidden = model->forward({input});
      auto [h, t] = select_targets(hidden, targets);
      auto loss = fused_linear_cross_entropy_sum(h, model->output_weight(), t, 1024) / static_cast<double>(t.size(0));
      loss.backward();
      clip_grad_norm(params, 1.0);
      opt.step(1e-4);
      loss_v = loss.item<double>();
      if (s > 0) {
        times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        cpu_times.push_back(cpu_seconds() - c0);
      }
    }
    std::string all;
    for (double t : times) all += (all.empty() ? "" : ", ") + std::to_string(t);
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    std::sort(cpu_times.begin(), cpu_times.end());
    const double cpu_median = cpu_times[cpu_times.size() / 2];
    std::cout << "{\"mode\": \"" << a["--mode"] << "\", \"parameters\": " << total << ", \"trainable\": " << trainable
              << ", \"peak_rss_mib\": " << peak_rss_mib() << ", \"step_s\": " << median << ", \"step_s_each\": [" << all << "]"
              << ", \"step_cpu_s\": " << cpu_median
              << ", \"tokens_per_s\": " << (B * T) / median << ", \"threads\": " << torch::get_num_threads()
              << ", \"last_loss\": " << loss_v << "}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
