#include "trainer/loop.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "common/error.h"
#include "common/fs_util.h"
#include "models/hf_model.h"
#include "parallel/collective_timeout.h"
#include "trainer/algorithm_registry.h"
#include "trainer/checkpoint.h"
#include "trainer/data_parallel.h"
#include "trainer/metrics.h"
#include "trainer/moe_balancing.h"
#include "trainer/optim.h"
#include "trainer/run_dir.h"
#include "trainer/signals.h"
#include "trainer/trained_weights.h"

namespace distillery {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// "; first non-finite gradient: NAME" for the first of `params` whose gradient holds NaN or Inf.
std::string first_nonfinite_grad(const parallel::NamedTensors& params) {
  for (const auto& [name, p] : params)
    if (p.grad().defined() && !torch::isfinite(p.grad()).all().item<bool>()) return "; first non-finite gradient: " + name;
  return "";
}

// A resume that changes what the algorithm says fixes its data order or global batch silently trains
// on another sequence of batches than the run it continues. An object value compares by its "rows".
void check_resume_changes(const nlohmann::json& saved, const nlohmann::json& now, const std::string& checkpoint,
                          bool accept, bool lead) {
  if (saved.is_null()) return;
  auto same = [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.is_object() && b.is_object() ? a.value("rows", -1) == b.value("rows", -1) : a == b;
  };
  auto show = [](const nlohmann::json& v) {
    return v.is_object() ? std::to_string(v.value("rows", -1)) + " (" + v.value("split", "") + ")" : v.dump();
  };
  std::string changes;
  for (const auto& [key, value] : now.items())
    if (!saved.contains(key) || !same(saved[key], value))
      changes += (changes.empty() ? "" : ", ") + key + " " + (saved.contains(key) ? show(saved[key]) : "?") + " -> " +
                 show(value);
  if (changes.empty()) return;
  DIST_CHECK(accept, "resuming ", checkpoint, " with a changed data order or global batch: ", changes,
             "; set trainer.resume_accept_changes=true to continue anyway, or trainer.resume=none to start over");
  if (lead) std::cerr << "[distillery] resuming with changes (trainer.resume_accept_changes): " << changes << "\n";
}

// Every rank must agree on stopping, or one would wait forever in the next collective.
bool any_rank_stopping(parallel::Communicator& world) {
  auto stop = torch::tensor({stop_requested() ? 1.0 : 0.0}, torch::kFloat64);
  world.allreduce(stop, parallel::ReduceOp::kMax);
  return stop.item<double>() > 0;
}

// A stop request (SIGTERM, SIGINT, SIGUSR1) during start-up ends the run before it trains or saves
// anything; every rank checks at the same points so none is left waiting in a collective.
void abort_if_stopped(parallel::Communicator& world, const char* when) {
  DIST_CHECK(!any_rank_stopping(world), "stop requested (SIGTERM, SIGINT or SIGUSR1) ", when,
             ": nothing was trained and no checkpoint was written");
}

// "eval_<name>" = sum / "<name>_count" when the algorithm gave a count, else the sum.
void add_eval_metrics(const MetricSums& sums, nlohmann::json& rec) {
  for (const auto& [name, value] : sums.values()) {
    if (name.size() > 6 && name.compare(name.size() - 6, 6, "_count") == 0) continue;
    rec["eval_" + name] = sums.has(name + "_count") ? value / std::max(1.0, sums.get(name + "_count")) : value;
  }
}

// Everything a run holds between start-up and final/: built by start(), used by step() and finish().
struct Run {
  const RecipeConfig& cfg;
  std::shared_ptr<parallel::Communicator> world;
  bool lead;
  parallel::Mesh mesh;
  torch::Dtype dtype;
  CausalLM model{nullptr};
  std::unique_ptr<TrainedWeights> weights;
  std::unique_ptr<Algorithm> algorithm;
  std::unique_ptr<AdamW> optimizer;
  std::unique_ptr<DataParallel> data_parallel;
  std::unique_ptr<MoeBalancing> balancing;
  CheckpointWrite ckpt;
  RunDirState run_dir_state;  // holds the run directory's lock until the run ends
  int64_t start_step = 0;

  Run(const RecipeConfig& c, std::shared_ptr<parallel::Communicator> w)
      : cfg(c), world(std::move(w)), lead(world->rank() == 0),
        mesh(world, parallel::MeshConfig{static_cast<int>(c.parallel.tp), static_cast<int>(c.parallel.ep)}),
        dtype(parse_dtype(c.model.dtype)) {}

  void start();
  // One optimizer step; returns its metrics record (without eval).
  nlohmann::json step(int64_t step);
  std::optional<MetricSums> evaluate();
  void save(int64_t step);
};

void Run::start() {
  const auto& tc = cfg.trainer;
  if (lead) {
    run_dir_state = prepare_run_dir(tc);
    if (!run_dir_state.note.empty()) std::cerr << "[distillery] " << tc.output_dir << ": " << run_dir_state.note << "\n";
    write_text_file((fs::path(tc.output_dir) / "config.yaml").string(), dump_recipe(cfg));
  }
  world->barrier();  // the others read the directory only once it is ready
  torch::manual_seed(static_cast<uint64_t>(tc.seed));

  const parallel::ModelParallel mp{mesh.tp(), mesh.ep()};
  model = load_hf_model(cfg.model.path, dtype, mp);
  DIST_CHECK(cfg.moe.bias_update_rate == 0 || model->config().moe.score_correction_bias, "moe.bias_update_rate=",
             cfg.moe.bias_update_rate, ": model_type ", model->config().model_type,
             " has no gate.e_score_correction_bias to update (auxiliary-loss-free balancing is deepseek_v3's)");
  DIST_CHECK(cfg.moe.bias_update_rate == 0 || !cfg.lora.enabled(), "moe.bias_update_rate=", cfg.moe.bias_update_rate,
             " with lora: the correction bias belongs to the base model, which a LoRA run neither trains nor saves");
  if (lead && world->size() > 1) std::cerr << "[distillery] " << mesh.describe() << "\n";
  weights = std::make_unique<TrainedWeights>(cfg, model, lead);
  abort_if_stopped(*world, "while loading the model");

  const AlgorithmSpec* spec = AlgorithmRegistry::instance().find(cfg.algorithm);
  DIST_CHECK(spec, "algorithm: '", cfg.algorithm, "' is not a registered algorithm");
  AlgorithmContext ctx{cfg, model, mesh, weights->adapters(), [this, mp](const FrozenModelSpec& s) {
                         CausalLM m = load_hf_model(s.path, s.dtype.empty() ? dtype : parse_dtype(s.dtype),
                                                    s.same_layout ? mp : parallel::ModelParallel{});
                         m->eval();
                         for (auto& p : m->parameters()) p.set_requires_grad(false);
                         return m;
                       }};
  algorithm = spec->make(ctx);
  abort_if_stopped(*world, "while preparing the data");

  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (auto& np : model->named_parameters()) named.emplace_back(np.key(), np.value());
  optimizer = std::make_unique<AdamW>(named, cfg.optim);
  data_parallel = std::make_unique<DataParallel>(mesh, cfg.parallel, *model, *optimizer);
  balancing = std::make_unique<MoeBalancing>(cfg.moe, model);

  ckpt.run_dir = tc.output_dir;
  ckpt.data_order = algorithm->data_order();
  ckpt.source_model_dir = cfg.model.path;
  ckpt.dtype = dtype;
  ckpt.max_shard_bytes = tc.max_shard_size_mb * (int64_t{1} << 20);
  ckpt.keep_last = tc.keep_last;
  ckpt.sharded_optimizer = data_parallel->sharded_optimizer();
  ckpt.write_weights = weights->checkpoint_writer();

  std::optional<std::string> resume_from;
  if (tc.resume == "auto") resume_from = latest_checkpoint(tc.output_dir);
  else if (tc.resume != "none") resume_from = tc.resume;
  if (resume_from) {
    auto r = load_checkpoint(*resume_from, model, *optimizer, weights->checkpoint_loader());
    check_resume_changes(r.data_order, ckpt.data_order, *resume_from, tc.resume_accept_changes, lead);
    algorithm->load_state(r.algorithm_state);
    start_step = r.step;
    if (lead) std::cerr << "[distillery] resumed from " << *resume_from << " at step " << start_step << "\n";
  }
  if (lead) std::cerr << "[distillery] " << algorithm->describe() << "\n";
}

nlohmann::json Run::step(int64_t step) {
  const auto ts = Clock::now();
  parallel::set_current_step(step + 1);
  const StepPlan plan = algorithm->prepare_step();
  optimizer->zero_grad();
  MetricSums sums;
  double loss_sum = 0;
  for (int64_t i = 0; i < plan.micro_batches; ++i) {
    data_parallel->begin_micro_batch(/*last=*/i + 1 == plan.micro_batches);
    balancing->begin_micro_batch();
    auto loss = balancing->finish_micro_batch(algorithm->micro_batch_loss(i, sums), plan.global_tokens, sums);
    loss.backward();
    loss_sum += loss.item<double>();
  }
  data_parallel->finish_gradients();
  // The loss and the metrics are per-micro-batch shares of step-wide values: summed over ranks.
  sums.add("loss", loss_sum);
  sums.allreduce(*mesh.dp());
  const double loss = sums.get("loss");
  const double grad_norm = data_parallel->clip_gradients(cfg.optim.max_grad_norm);
  // Every rank holds the same reduced loss and global norm, so all stop here together.
  if (!std::isfinite(loss) || !std::isfinite(grad_norm))
    DIST_FAIL("step ", step + 1, ": the loss (", loss, ") or gradient norm (", grad_norm, ") is not finite",
              first_nonfinite_grad(data_parallel->trainable()),
              "; stopped before the update, earlier checkpoints are kept (lower optim.lr or check the data)");
  const double lr = lr_at(cfg.optim, step, cfg.trainer.max_steps);
  optimizer->step(lr);
  data_parallel->after_optimizer_step();
  balancing->end_step(*mesh.dp());
  algorithm->end_step();

  const double step_s = std::chrono::duration<double>(Clock::now() - ts).count();
  nlohmann::json rec = {{"step", step + 1},
                        {"loss", loss},
                        {"lr", lr},
                        {"grad_norm", grad_norm},
                        {"tokens", plan.global_tokens},
                        {"target_tokens", plan.global_targets},
                        {"tokens_per_s", plan.global_tokens / std::max(step_s, 1e-9)},
                        {"step_s", step_s}};
  for (const auto& [name, value] : sums.values())
    if (name != "loss") rec[name] = value;
  return rec;
}

std::optional<MetricSums> Run::evaluate() {
  model->eval();
  std::optional<MetricSums> sums;
  {
    torch::NoGradGuard no_grad;
    sums = algorithm->evaluate();
  }
  model->train();
  // Every rank has evaluation data or none does (the recipe's data.eval); sums reduce by name.
  if (sums) sums->allreduce(*mesh.dp());
  return sums;
}

void Run::save(int64_t step) {
  ckpt.step = step;
  ckpt.algorithm_state = algorithm->state();
  const std::string dir = save_checkpoint(ckpt, model, *optimizer, mesh);
  if (lead) std::cerr << "[distillery] saved " << dir << "\n";
}

}  // namespace

Trainer::Trainer(RecipeConfig cfg, std::shared_ptr<parallel::Communicator> world)
    : cfg_(std::move(cfg)), world_(std::move(world)) {}

TrainResult Trainer::run() {
  install_stop_handlers();
  parallel::set_collective_timeout(cfg_.parallel.timeout_s);
  parallel::set_stop_check(&stop_requested);
  parallel::set_current_step(0);
  Run run(cfg_, world_);
  run.start();
  const auto& tc = cfg_.trainer;
  MetricsLog metrics(tc.output_dir, run.start_step, run.lead);
  abort_if_stopped(*world_, "before the first step");
  run.model->train();
  TrainResult result;
  const auto t0 = Clock::now();
  double window_s = 0, window_tokens = 0;
  for (int64_t step = run.start_step; step < tc.max_steps; ++step) {
    nlohmann::json rec = run.step(step);
    const int64_t done = step + 1;
    window_s += rec["step_s"].get<double>();
    window_tokens += rec["tokens"].get<double>();
    rec.erase("step_s");
    rec["elapsed_s"] = std::chrono::duration<double>(Clock::now() - t0).count();
    result.steps_done = done;
    result.last_loss = rec["loss"].get<double>();
    if ((tc.eval_every > 0 && done % tc.eval_every == 0) || done == tc.max_steps)
      if (auto e = run.evaluate()) add_eval_metrics(*e, rec);
    metrics.write(rec);
    if (run.lead && (done % tc.log_every == 0 || done == tc.max_steps)) {
      const double eta = (tc.max_steps - done) * (window_s / std::max<int64_t>(1, done - run.start_step));
      std::cerr << progress_line(done, tc.max_steps, result.last_loss, rec["lr"].get<double>(),
                                 rec["grad_norm"].get<double>(), window_tokens / std::max(window_s, 1e-9), eta);
      if (rec.contains("eval_loss")) std::cerr << " | eval_loss " << rec["eval_loss"].get<double>();
      std::cerr << "\n";
    }
    if (any_rank_stopping(*world_) && done < tc.max_steps) {
      if (run.lead) std::cerr << "[distillery] stop requested: checkpointing at step " << done << "\n";
      run.save(done);
      result.stopped_by_signal = true;
      return result;
    }
    if (tc.save_every > 0 && done % tc.save_every == 0 && done < tc.max_steps) run.save(done);
  }
  const std::string final_dir = (fs::path(tc.output_dir) / "final").string();
  run.weights->save_final(final_dir, run.dtype, run.ckpt.max_shard_bytes, run.lead);
  if (run.lead) std::cerr << "[distillery] wrote " << final_dir << "\n";
  world_->barrier();
  return result;
}

}  // namespace distillery
