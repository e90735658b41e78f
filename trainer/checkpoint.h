// Checkpoints: run_dir/checkpoints/step-N/ holds a Hugging Face model dir (loadable as is), or a PEFT
// adapter dir when the run trains LoRA adapters, plus trainer_state/ (optimizer moments, RNG, data position, step). Written under a temp name and
// renamed, so a killed run never leaves a half checkpoint that resume would pick.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "parallel/mesh.h"
#include "trainer/optim.h"
#include "models/transformer.h"

namespace distillery {

struct CheckpointWrite {
  std::string run_dir;
  int64_t step = 0;
  nlohmann::json algorithm_state;
  nlohmann::json data_order;  // what defines the data order and global batch; compared on resume
  std::string source_model_dir;  // tokenizer/generation files carried from here
  torch::Dtype dtype = torch::kFloat32;
  int64_t max_shard_bytes = int64_t{5} << 30;
  int64_t keep_last = 2;
  // Writes the trained weights into the checkpoint dir; unset: the whole model as a HF model dir.
  // Called on every rank (sharded models gather their tensors); the rank given write=true writes.
  std::function<void(const std::string& dir, bool write)> write_weights;
  // ZeRO-1: each dp rank writes its own optimizer-0000r-of-0000n.safetensors.
  bool sharded_optimizer = false;
};

// Collective over the world of `mesh`: every rank calls it. Weights and optimizer state are written
// as whole tensors (tp slices and ep experts gathered), so any layout can resume from them: world
// rank 0 writes the weights and state, and the optimizer file, or, when sharded, tp rank 0 of each
// dp rank its shard. Returns the checkpoint's directory.
std::string save_checkpoint(const CheckpointWrite& w, CausalLM& model, const AdamW& optimizer,
                            const parallel::Mesh& mesh);

// The newest complete checkpoints/step-N under run_dir.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

struct CheckpointRead {
  int64_t step = 0;
  nlohmann::json algorithm_state;
  nlohmann::json data_order;  // null for checkpoints written before it was recorded
};

// Loads weights, optimizer state and RNG from `dir` (this rank's slices of them); shapes are checked
// tensor by tensor. `load_weights`
// reads the trained weights from the dir (the counterpart of CheckpointWrite::write_weights); unset:
// the whole model from a HF model dir.
CheckpointRead load_checkpoint(const std::string& dir, CausalLM& model, AdamW& optimizer,
                               const std::function<void(const std::string& dir)>& load_weights = {});

}  // namespace distillery
