#include "trainer/loop.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "algorithms/lora/adapt.h"
#include "algorithms/lora/peft_format.h"
#include "algorithms/sft/sft.h"
#include "parallel/collective_timeout.h"
#include "parallel/grad_reducer.h"
#include "parallel/mesh.h"
#include "parallel/model_shards.h"
#include "trainer/checkpoint.h"
#include "trainer/error.h"
#include "trainer/fs_util.h"
#include "trainer/hf_model.h"
#include "trainer/metrics.h"
#include "trainer/optim.h"
#include "trainer/run_dir.h"
#include "trainer/signals.h"

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

// What fixes the sequence of global batches: a resume that changes any of it silently trains on
// another order or batch size than the run it continues. How the global batch is split over
// micro-batches, accumulation and ranks does not change the math (losses are normalized over the
// global batch), so only its size is compared.
nlohmann::json data_order_of(const RecipeConfig& cfg, int dp_size) {
  std::error_code ec;
  const auto bytes = fs::file_size(cfg.data.train, ec);
  const int64_t rows = cfg.trainer.micro_batch_size * cfg.trainer.grad_accum_steps * dp_size;
  return {{"global batch rows (micro_batch_size x grad_accum_steps x data-parallel ranks)",
           {{"rows", rows},
            {"split", std::to_string(cfg.trainer.micro_batch_size) + "x" + std::to_string(cfg.trainer.grad_accum_steps) +
                          "x" + std::to_string(dp_size)}}},
          {"trainer.seed", cfg.trainer.seed},
          {"data.train", cfg.data.train},
          {"data.train bytes", ec ? -1 : static_cast<int64_t>(bytes)},
          {"data.format", cfg.data.format},
          {"data.max_seq_len", cfg.data.max_seq_len},
          {"data.packing", cfg.data.packing},
          {"data.shuffle", cfg.data.shuffle}};
}

void check_resume_changes(const nlohmann::json& saved, const nlohmann::json& now, const std::string& checkpoint,
                          bool accept, bool lead) {
  if (saved.is_null()) return;
  // 8 rows as 2x2x2 or as 4x1x2 are the same global batch: only the rows are compared.
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

}  // namespace

Trainer::Trainer(RecipeConfig cfg, std::shared_ptr<parallel::Communicator> world)
    : cfg_(std::move(cfg)), world_(std::move(world)) {}

std::unique_ptr<Algorithm> Trainer::make_algorithm(int64_t vocab_size, const parallel::Communicator& dp) {
  DIST_ASSERT(cfg_.algorithm == "sft", cfg_.algorithm);
  return std::make_unique<Sft>(cfg_, vocab_size, dp.rank(), dp.size());
}

TrainResult Trainer::run() {
  const bool lead = world_->rank() == 0;
  const auto& pc = cfg_.parallel;
  parallel::Mesh mesh(world_, parallel::MeshConfig{static_cast<int>(pc.tp), static_cast<int>(pc.ep)});
  const auto& dp = mesh.dp();
  const auto& tc = cfg_.trainer;
  const std::string& run_dir = tc.output_dir;
  // A stop request (SIGTERM, SIGINT) during start-up ends the run before it trains or saves
  // anything; every rank checks at the same points so none is left waiting in a collective.
  install_stop_handlers();
  parallel::set_collective_timeout(cfg_.parallel.timeout_s);
  parallel::set_stop_check(&stop_requested);
  parallel::set_current_step(0);
  auto abort_if_stopped = [&](const char* when) {
    auto stop = torch::tensor({stop_requested() ? 1.0 : 0.0}, torch::kFloat64);
    world_->allreduce(stop, parallel::ReduceOp::kMax);
    DIST_CHECK(stop.item<double>() == 0, "stop requested (SIGTERM, SIGINT or SIGUSR1) ", when,
               ": nothing was trained and no checkpoint was written");
  };
  RunDirState run_dir_state;
  if (lead) {
    run_dir_state = prepare_run_dir(tc);
    if (!run_dir_state.note.empty()) std::cerr << "[distillery] " << run_dir << ": " << run_dir_state.note << "\n";
    write_text_file((fs::path(run_dir) / "config.yaml").string(), dump_recipe(cfg_));
  }
  world_->barrier();  // the others read the directory only once it is ready
  torch::manual_seed(static_cast<uint64_t>(tc.seed));
  const torch::Dtype dtype = parse_dtype(cfg_.model.dtype);

  parallel::ModelParallel mp{mesh.tp(), mesh.ep()};
  CausalLM model = load_hf_model(cfg_.model.path, dtype, mp);
  DIST_CHECK(cfg_.moe.bias_update_rate == 0 || model->config().moe.score_correction_bias, "moe.bias_update_rate=",
             cfg_.moe.bias_update_rate, ": model_type ", model->config().model_type,
             " has no gate.e_score_correction_bias to update (auxiliary-loss-free balancing is deepseek_v3's)");
  DIST_CHECK(cfg_.moe.bias_update_rate == 0 || !cfg_.lora.enabled(), "moe.bias_update_rate=", cfg_.moe.bias_update_rate,
             " with lora: the correction bias belongs to the base model, which a LoRA run neither trains nor saves");
  if (lead && world_->size() > 1) std::cerr << "[distillery] " << mesh.describe() << "\n";
  // LoRA: adapters on a frozen base; the optimizer, checkpoints and final/ then hold only the adapter.
  std::optional<LoraConfig> lora;
  if (cfg_.lora.enabled()) {
    lora = adapt_for_training(model, cfg_.lora, static_cast<uint64_t>(tc.seed));
    if (lead) std::cerr << "[distillery] " << lora_summary(model, *lora) << "\n";
  }
  abort_if_stopped("while loading the model");
  auto algorithm = make_algorithm(model->config().vocab_size, *dp);
  abort_if_stopped("while preparing the data");
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (auto& np : model->named_parameters()) named.emplace_back(np.key(), np.value());
  AdamW optimizer(named, cfg_.optim);
  parallel::NamedTensors trainable_named, dense_named, expert_named;
  for (auto& s : optimizer.slots()) {
    trainable_named.emplace_back(s.name, s.param);
    (parallel::parse_expert_name(s.name).expert >= 0 ? expert_named : dense_named).emplace_back(s.name, s.param);
  }
  // Every dp replica starts from the same weights; gradients are summed in buckets during backward:
  // dense ones over dp, routed experts' over the ranks holding the same experts (expert-dp).
  const bool split_experts = mesh.ep_size() > 1;
  parallel::broadcast_parameters(split_experts ? dense_named : trainable_named, *dp, 0);
  if (split_experts) parallel::broadcast_parameters(expert_named, *mesh.expert_dp(), 0);
  parallel::GradReducer reducer(split_experts ? dense_named : trainable_named, dp, pc.bucket_mb);
  std::unique_ptr<parallel::GradReducer> expert_reducer;
  if (split_experts) expert_reducer = std::make_unique<parallel::GradReducer>(expert_named, mesh.expert_dp(), pc.bucket_mb);
  const auto tp_shards = parallel::tp_shard_map(*model);
  std::vector<torch::Tensor> trainable;
  std::vector<double> copies;  // ranks holding an identical copy of each, for the global gradient norm
  for (const auto& [name, p] : trainable_named) {
    trainable.push_back(p);
    copies.push_back(parallel::param_copies(name, parallel::shard_of(tp_shards, name), world_->size(), mesh.ep_size()));
  }
  const bool zero = pc.zero_stage >= 1 && dp->size() > 1;
  // ZeRO-1: dense weights' state is spread over dp; routed experts' over the ranks sharing them.
  auto is_expert = [](const ParamSlot& s) { return parallel::parse_expert_name(s.name).expert >= 0; };
  if (zero && split_experts) {
    optimizer.shard(dp->rank(), dp->size(), [&](const ParamSlot& s) { return !is_expert(s); });
    optimizer.shard(mesh.expert_dp_rank(), mesh.expert_dp_size(), is_expert);
  } else if (zero) {
    optimizer.shard(dp->rank(), dp->size());
  }

  const nlohmann::json data_order = data_order_of(cfg_, dp->size());
  int64_t start_step = 0;
  std::optional<std::string> resume_from;
  if (tc.resume == "auto") resume_from = latest_checkpoint(run_dir);
  else if (tc.resume != "none") resume_from = tc.resume;
  if (resume_from) {
    std::function<void(const std::string&)> load_adapter;
    if (lora) load_adapter = [&](const std::string& dir) { load_peft_adapter_weights(model, *lora, dir); };
    auto r = load_checkpoint(*resume_from, model, optimizer, load_adapter);
    check_resume_changes(r.data_order, data_order, *resume_from, tc.resume_accept_changes, lead);
    algorithm->load_state(r.algorithm_state);
    start_step = r.step;
    if (lead) std::cerr << "[distillery] resumed from " << *resume_from << " at step " << start_step << "\n";
  }
  if (lead) std::cerr << "[distillery] " << algorithm->describe() << "\n";

  MetricsLog metrics(run_dir, start_step, lead);
  CheckpointWrite ckpt;
  ckpt.run_dir = run_dir;
  ckpt.data_order = data_order;
  ckpt.source_model_dir = cfg_.model.path;
  ckpt.dtype = dtype;
  ckpt.max_shard_bytes = tc.max_shard_size_mb * (int64_t{1} << 20);
  ckpt.keep_last = tc.keep_last;
  ckpt.sharded_optimizer = zero;
  if (lora)
    ckpt.write_weights = [&](const std::string& dir, bool write) {
      write_peft_adapter_files(model, *lora, dir, cfg_.model.path, write);
    };
  auto save = [&](int64_t step) {
    ckpt.step = step;
    ckpt.algorithm_state = algorithm->state();
    const std::string dir = save_checkpoint(ckpt, model, optimizer, mesh);
    if (lead) std::cerr << "[distillery] saved " << dir << "\n";
  };
  auto evaluate = [&]() -> std::optional<double> {
    model->eval();
    auto sums = algorithm->evaluate(model);
    model->train();
    if (!sums) return std::nullopt;
    auto t = torch::tensor({sums->loss_sum, static_cast<double>(sums->targets)}, torch::kFloat64);
    dp->allreduce(t);
    return t[0].item<double>() / std::max(1.0, t[1].item<double>());
  };

  abort_if_stopped("before the first step");
  model->train();
  TrainResult result;
  const auto t0 = Clock::now();
  double window_s = 0;
  int64_t window_tokens = 0;
  for (int64_t step = start_step; step < tc.max_steps; ++step) {
    const auto ts = Clock::now();
    parallel::set_current_step(step + 1);
    StepData data = algorithm->next_step();
    optimizer.zero_grad();
    std::map<std::string, double> extra;
    double loss_sum = 0;
    for (size_t i = 0; i < data.micro.size(); ++i) {
      reducer.begin_step(/*sync=*/i + 1 == data.micro.size());
      if (expert_reducer) expert_reducer->begin_step(/*sync=*/i + 1 == data.micro.size());
      auto loss = algorithm->loss(model, data.micro[i], data.global_targets, extra);
      loss.backward();
      loss_sum += loss.item<double>();
    }
    // Losses are normalized by the global target count, so gradients and losses are summed over ranks.
    reducer.finish();
    if (expert_reducer) expert_reducer->finish();
    parallel::sync_tp_partial_grads(trainable_named, tp_shards, *mesh.tp());
    // The loss and the algorithm's metrics are per-micro-batch shares of step-wide means: sum them.
    std::vector<double> sums{loss_sum};
    for (const auto& kv : extra) sums.push_back(kv.second);
    auto reduced = torch::tensor(sums, torch::kFloat64);
    dp->allreduce(reduced);
    {
      size_t k = 1;
      for (auto& kv : extra) kv.second = reduced[k++].item<double>();
    }
    const double grad_norm = clip_grad_norm(trainable, cfg_.optim.max_grad_norm, copies, world_.get());
    // Every rank holds the same reduced loss and global norm, so all stop here together.
    if (!std::isfinite(reduced[0].item<double>()) || !std::isfinite(grad_norm))
      DIST_FAIL("step ", step + 1, ": the loss (", reduced[0].item<double>(), ") or gradient norm (", grad_norm,
                ") is not finite", first_nonfinite_grad(trainable_named),
                "; stopped before the update, earlier checkpoints are kept (lower optim.lr or check the data)");
    const double lr = lr_at(cfg_.optim, step, tc.max_steps);
    optimizer.step(lr);
    if (zero) {
      torch::NoGradGuard no_grad;
      for (auto& s : optimizer.slots()) {
        auto t = s.param.detach();
        (split_experts && is_expert(s) ? *mesh.expert_dp() : *dp).broadcast(t, s.owner);
      }
    }

    algorithm->end_step(model, *dp);

    const double step_s = std::chrono::duration<double>(Clock::now() - ts).count();
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    window_s += step_s;
    window_tokens += data.global_tokens;
    const double tps = data.global_tokens / std::max(step_s, 1e-9);
    const int64_t done = step + 1;
    result.steps_done = done;
    result.last_loss = reduced[0].item<double>();
    nlohmann::json rec = {{"step", done},     {"loss", result.last_loss}, {"lr", lr},
                          {"grad_norm", grad_norm}, {"tokens", data.global_tokens}, {"target_tokens", data.global_targets},
                          {"tokens_per_s", tps}, {"elapsed_s", elapsed}};
    for (const auto& kv : extra) rec[kv.first] = kv.second;
    const bool eval_now = (tc.eval_every > 0 && done % tc.eval_every == 0) || done == tc.max_steps;
    if (eval_now)
      if (auto e = evaluate()) rec["eval_loss"] = *e;
    metrics.write(rec);
    if (lead && (done % tc.log_every == 0 || done == tc.max_steps)) {
      const double eta = (tc.max_steps - done) * (window_s / std::max<int64_t>(1, done - start_step));
      std::cerr << progress_line(done, tc.max_steps, result.last_loss, lr, grad_norm,
                                 window_tokens / std::max(window_s, 1e-9), eta);
      if (rec.contains("eval_loss")) std::cerr << " | eval_loss " << rec["eval_loss"].get<double>();
      std::cerr << "\n";
    }

    // Every rank must agree on stopping, or one would wait forever in the next collective.
    auto stop = torch::tensor({stop_requested() ? 1.0 : 0.0}, torch::kFloat64);
    world_->allreduce(stop, parallel::ReduceOp::kMax);
    if (stop.item<double>() > 0 && done < tc.max_steps) {
      if (lead) std::cerr << "[distillery] stop requested: checkpointing at step " << done << "\n";
      save(done);
      result.stopped_by_signal = true;
      return result;
    }
    if (tc.save_every > 0 && done % tc.save_every == 0 && done < tc.max_steps) save(done);
  }

  {
    const std::string final_dir = (fs::path(run_dir) / "final").string();
    if (lora)
      save_peft_adapter(model, *lora, final_dir, cfg_.model.path, lead);
    else
      save_hf_model(model, final_dir, cfg_.model.path, dtype, ckpt.max_shard_bytes, lead);
    if (lead) std::cerr << "[distillery] wrote " << final_dir << "\n";
  }
  world_->barrier();
  return result;
}

}  // namespace distillery
