// Hugging Face model directories in and out: config.json + model.safetensors (or an index and
// shards), with generation_config.json and the tokenizer files carried alongside.
#pragma once

#include <string>
#include <vector>

#include "models/transformer.h"

namespace distillery {

// Builds the model described by DIR/config.json and loads DIR's safetensors into it, checking
// every tensor's presence and shape. dtype: parameter dtype after loading. With `mp` the model is
// this rank's shard and each rank reads only its slices (the files are memory-mapped).
CausalLM load_hf_model(const std::string& dir, torch::Dtype dtype = torch::kFloat32,
                       const parallel::ModelParallel& mp = {});

// Every reason `config` cannot be split tp x ep ways (heads, widths, vocabulary, experts), joined
// into one UserError naming `where` (the config file); none when tp = ep = 1.
void check_parallel_layout(const TransformerConfig& config, int tp, int ep, const std::string& where);

// Copies DIR's tensors (this rank's slices of them) into `model` (names and shapes checked).
void load_hf_weights(CausalLM& model, const std::string& dir);

// Every tensor of the checkpoint: named_parameters() then named_buffers() (router correction
// biases), in module order, as live references.
std::vector<std::pair<std::string, torch::Tensor>> hf_named_tensors(CausalLM& model);

// The (name, tensor) list written to disk: hf_named_tensors() detached and cast to `dtype`, as whole
// tensors in single-process order. For a sharded model (tp or ep > 1) it is collective: every rank
// calls it, the shards are gathered, and only ranks with keep=true get the list (others: empty).
std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(CausalLM& model, torch::Dtype dtype,
                                                                 bool keep = true);

// Writes a complete model dir at `out_dir` atomically (temp dir + rename). Non-weight files
// (generation_config.json, tokenizer files, chat template) are copied from `source_dir` when given.
// Sharded models: every rank calls it, the rank with write=true writes.
void save_hf_model(CausalLM& model, const std::string& out_dir, const std::string& source_dir,
                   torch::Dtype dtype, int64_t max_shard_bytes, bool write = true);

// Writes the model's files into an existing directory (no rename): used inside checkpoint dirs.
// Sharded models: every rank calls it, the rank with write=true writes.
void write_hf_model_files(CausalLM& model, const std::string& dir, const std::string& source_dir,
                          torch::Dtype dtype, int64_t max_shard_bytes, bool write = true);

// The files carried from a source model dir into every saved model.
const std::vector<std::string>& hf_side_files();

torch::Dtype parse_dtype(const std::string& name);  // fp32 | bf16 | fp16
std::string hf_dtype_name(torch::Dtype dtype);       // float32 | bfloat16 | float16

}  // namespace distillery
