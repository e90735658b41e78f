#include "trainer/checkpoint.h"

#include <filesystem>
#include <regex>

#include "parallel/model_shards.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "models/hf_model.h"
#include "trainer/run_dir.h"
#include "common/safetensors.h"

namespace distillery {
namespace fs = std::filesystem;

namespace {

const std::regex kStepDir("step-([0-9]+)");

std::vector<std::pair<int64_t, fs::path>> complete_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  const fs::path root = fs::path(run_dir) / "checkpoints";
  if (!fs::exists(root)) return out;
  for (const auto& e : fs::directory_iterator(root)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, m, kStepDir) &&
        fs::exists(e.path() / "trainer_state" / "state.json"))
      out.emplace_back(std::stoll(m[1].str()), e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

namespace {

void write_checkpoint(const CheckpointWrite& w, CausalLM& model, const AdamW& optimizer, const parallel::Mesh& mesh,
                      const std::string& tmp, const std::string& final_dir) {
  auto& world = *mesh.world();
  const bool lead = world.rank() == 0;
  const fs::path state_dir = fs::path(tmp) / "trainer_state";
  if (lead) {
    fs::remove_all(tmp);
    fs::create_directories(state_dir);
  }
  world.barrier();
  // Optimizer state: one file when every dp rank holds all of it, else one shard per dp rank; whole
  // tensors either way (assembled over tp and ep one at a time, keyed by parameter name).
  {
    const bool writer = w.sharded_optimizer ? mesh.tp_rank() == 0 : lead;
    char stem[96];
    if (w.sharded_optimizer)
      std::snprintf(stem, sizeof(stem), "optimizer-%05d-of-%05d", mesh.dp_rank() + 1, mesh.dp_size());
    else
      std::snprintf(stem, sizeof(stem), "optimizer");
    const auto tensors = optimizer.state_tensors();
    const auto shards = parallel::tp_shard_map(*model);
    const parallel::ShardOf shard_of = [&](const std::string& n) { return parallel::shard_of(shards, n); };
    // Sharded state: each dp rank's own slots, experts included, assembled over tp only (expert
    // names are global and each expert's state has one owner among the ranks sharing it).
    const parallel::ModelParallel groups =
        w.sharded_optimizer ? parallel::ModelParallel{model->parallel().tp, nullptr} : model->parallel();
    const int64_t per_rank = model->experts_per_rank();
    torch::Tensor rng;
    if (lead) rng = at::detail::getDefaultCPUGenerator().get_state();
    std::unique_ptr<SafetensorsDirWriter> out;
    if (writer) {
      auto plan = parallel::full_tensor_plan(tensors, shard_of, groups, per_rank);
      if (lead) plan.push_back({"rng.cpu", rng.scalar_type(), rng.sizes().vec()});
      out = std::make_unique<SafetensorsDirWriter>(state_dir.string(), plan, INT64_MAX, stem);
    }
    parallel::for_each_full_tensor(tensors, shard_of, groups, per_rank,
                                   [&](const std::string& n, const torch::Tensor& whole) {
                                     if (out) out->write(n, whole);
                                   });
    if (out && lead) out->write("rng.cpu", rng);
    if (out) out->commit();
  }
  if (w.write_weights)
    w.write_weights(tmp, lead);
  else
    write_hf_model_files(model, tmp, w.source_model_dir, w.dtype, w.max_shard_bytes, lead);
  world.barrier();
  if (lead) {
    nlohmann::json state = {{"step", w.step},
                            {"optimizer_step", optimizer.step_count()},
                            {"optimizer_shards", w.sharded_optimizer ? mesh.dp_size() : 1},
                            {"algorithm", w.algorithm_state},
                            {"data_order", w.data_order},
                            {"format", "distillery-trainer-state-v1"}};
    write_json_file((state_dir / "state.json").string(), state);
    fsync_dir(state_dir.string());
    commit_dir(tmp, final_dir);
    rotate_checkpoints(w.run_dir, w.step, w.keep_last);
  }
  world.barrier();
}

}  // namespace

std::string save_checkpoint(const CheckpointWrite& w, CausalLM& model, const AdamW& optimizer,
                            const parallel::Mesh& mesh) {
  const fs::path root = fs::path(w.run_dir) / "checkpoints";
  const std::string final_dir = (root / ("step-" + std::to_string(w.step))).string();
  const std::string tmp = (root / (".tmp-step-" + std::to_string(w.step))).string();
  try {
    write_checkpoint(w, model, optimizer, mesh, tmp, final_dir);
  } catch (const std::exception& e) {
    // A full disk or another I/O failure: drop the partial checkpoint; earlier ones stay intact.
    std::error_code ec;
    if (mesh.world()->rank() == 0) fs::remove_all(tmp, ec);
    if (const auto* fe = dynamic_cast<const fs::filesystem_error*>(&e))
      DIST_FAIL(fe->path1().empty() ? tmp : fe->path1().string(), ": ", fe->code().message(),
                " (writing checkpoint step ", w.step, "; earlier checkpoints are kept)");
    if (dynamic_cast<const UserError*>(&e))
      DIST_FAIL(e.what(), " (writing checkpoint step ", w.step, "; earlier checkpoints are kept)");
    throw;
  }
  return final_dir;
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  auto all = complete_checkpoints(run_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second.string();
}

CheckpointRead load_checkpoint(const std::string& dir, CausalLM& model, AdamW& optimizer,
                               const std::function<void(const std::string& dir)>& load_weights) {
  const fs::path state_dir = fs::path(dir) / "trainer_state";
  DIST_CHECK(fs::exists(state_dir / "state.json"), dir, ": not a distillery checkpoint (no trainer_state/state.json)");
  auto state = read_json_file((state_dir / "state.json").string());
  if (load_weights)
    load_weights(dir);
  else
    load_hf_weights(model, dir);
  // State is keyed by parameter name, so shards written by any number of ranks serve any other.
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  for (const auto& e : fs::directory_iterator(state_dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("optimizer", 0) == 0 && e.path().extension() == ".safetensors")
      files.push_back(std::make_unique<SafetensorsFile>(e.path().string()));
  }
  const int64_t shards = state.value("optimizer_shards", int64_t{1});
  DIST_CHECK(static_cast<int64_t>(files.size()) == shards, state_dir.string(), ": expected ", shards,
             " optimizer file(s), found ", files.size());
  auto find = [&](const std::string& name) -> const SafetensorsFile* {
    for (const auto& f : files)
      if (f->contains(name)) return f.get();
    return nullptr;
  };
  const auto placement = parallel::tp_shard_map(*model);
  auto get = [&](const std::string& name) {
    const SafetensorsFile* f = find(name);
    DIST_CHECK(f, state_dir.string(), ": missing optimizer tensor '", name,
               "' (was the checkpoint written for another model or adapter?)");
    const parallel::TpShard s = parallel::shard_of(placement, name);
    auto full = f->view(name);
    if (s.sharded() && full.dim() > s.dim && full.size(s.dim) % s.parts == 0) return parallel::local_slice(full, s);
    return full;  // a shape mismatch is reported by the optimizer with both shapes
  };
  optimizer.load_state_tensors(get, state.at("optimizer_step").get<int64_t>());
  if (const SafetensorsFile* f = find("rng.cpu")) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle sharing the default generator
    gen.set_state(f->view("rng.cpu").clone());
  }
  CheckpointRead r;
  r.step = state.at("step").get<int64_t>();
  r.algorithm_state = state.at("algorithm");
  r.data_order = state.value("data_order", nlohmann::json());
  return r;
}

}  // namespace distillery
