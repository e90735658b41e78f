// Batched autoregressive sampling with a KV cache, for every model family (GQA with sliding
// windows, MLA, MoE), under any dp x tp x ep layout: `distillery generate`, and later the
// rollouts of GRPO.
//
// A batch is left-padded to its longest prompt (padding is a document of its own, so no real token
// attends it), prefilled in one forward, then decoded one token per forward. Sampling follows
// Hugging Face's order: temperature, top-k, top-p, then a draw from the softmax, using a CPU
// generator seeded per batch, so every tp rank draws the same tokens and a batch samples the same
// whatever rank runs it. temperature 0 is greedy.
#pragma once

#include <cstdint>
#include <vector>

#include "parallel/communicator.h"
#include "models/transformer.h"

namespace distillery {

struct SamplingParams {
  int64_t max_new_tokens = 256;
  double temperature = 1.0;  // 0: greedy
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // 1: off
};

struct Generation {
  std::vector<int32_t> ids;  // the sampled tokens, ending with the stop token when `stopped`
  bool stopped = false;      // a stop token ended it (else max_new_tokens did)
};

// Samples a continuation of each prompt (token ids, each non-empty). `seed` seeds this batch's
// generator. Collective over the model's tp and ep groups; with `lockstep` (the dp group, needed
// when ep > 1) every rank of it keeps stepping until all of them are done, because each forward
// exchanges tokens between ep ranks. A rank with nothing to generate passes no prompts and still
// takes part when `lockstep` is set.
std::vector<Generation> generate_batch(CausalLM& model, const std::vector<std::vector<int32_t>>& prompts,
                                       const SamplingParams& params, const std::vector<int64_t>& stop_ids,
                                       uint64_t seed, parallel::Communicator* lockstep = nullptr);

// [B, V] fp32 logits -> [B] int64 next tokens per `params` (temperature 0: argmax).
torch::Tensor sample_next(const torch::Tensor& logits, const SamplingParams& params, at::Generator& gen);

// The stop tokens of a model dir: generation_config.json's eos_token_id (a number or a list), else
// config.json's, else `fallback` when given.
std::vector<int64_t> model_stop_ids(const std::string& model_dir, std::optional<int64_t> fallback);

}  // namespace distillery
