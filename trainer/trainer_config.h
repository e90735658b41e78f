// The `trainer:` section of a recipe: steps, batching, logging, evaluation and checkpoints.
#pragma once

#include "common/config_fields.h"

namespace distillery {

struct TrainerConfig {
  std::string output_dir;
  int64_t max_steps = 0;
  int64_t micro_batch_size = 1;
  int64_t grad_accum_steps = 1;
  int64_t seed = 42;
  int64_t log_every = 1;
  int64_t eval_every = 0;
  int64_t save_every = 0;
  int64_t keep_last = 2;
  std::string resume = "auto";
  bool overwrite_output_dir = false;
  bool resume_accept_changes = false;
  int64_t max_shard_size_mb = 5000;

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("output_dir", output_dir, "run directory: config.yaml, metrics.jsonl, checkpoints/, final/", required());
    v("max_steps", max_steps, "optimizer steps to run", gt(0) & required());
    v("micro_batch_size", micro_batch_size, "packed rows of data.max_seq_len tokens per forward, per rank", ge(1));
    v("grad_accum_steps", grad_accum_steps, "micro-batches per optimizer step, per rank", ge(1));
    v("seed", seed, "seeds model init, data order and sampling");
    v("log_every", log_every, "progress line every N steps (metrics.jsonl gets every step)", ge(1));
    v("eval_every", eval_every, "evaluate on data.eval every N steps (0: only at the end)", ge(0));
    v("save_every", save_every, "checkpoint every N steps (0: only final/)", ge(0));
    v("keep_last", keep_last, "checkpoints kept in checkpoints/ (older ones are deleted)", ge(1));
    v("resume", resume, "auto: continue from the latest checkpoint in output_dir; none; or a checkpoint dir");
    v("overwrite_output_dir", overwrite_output_dir,
      "with resume: none, delete the run already in output_dir (checkpoints, metrics, final/) and start over; "
      "without it such a directory is refused");
    v("resume_accept_changes", resume_accept_changes,
      "resume even though what defines the data order and the global batch (micro_batch_size, grad_accum_steps, "
      "data-parallel size, seed, data files, max_seq_len, packing) differs from the checkpoint's; otherwise an error");
    v("max_shard_size_mb", max_shard_size_mb, "split saved model.safetensors into shards of at most this size",
      ge(1));
  }
};

}  // namespace distillery
