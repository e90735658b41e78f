// Hugging Face model directories in and out: config.json + model.safetensors (or an index and
// shards), with generation_config.json and the tokenizer files carried alongside.
#pragma once

#include <string>
#include <vector>

#include "trainer/transformer.h"

namespace distillery {

// Builds the model described by DIR/config.json and loads DIR's safetensors into it, checking
// every tensor's presence and shape. dtype: parameter dtype after loading.
CausalLM load_hf_model(const std::string& dir, torch::Dtype dtype = torch::kFloat32);

// Copies DIR's tensors into `model` (names and shapes checked).
void load_hf_weights(CausalLM& model, const std::string& dir);

// The (name, tensor) list written to disk: named_parameters() in module order.
std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(CausalLM& model, torch::Dtype dtype);

// Writes a complete model dir at `out_dir` atomically (temp dir + rename). Non-weight files
// (generation_config.json, tokenizer files, chat template) are copied from `source_dir` when given.
void save_hf_model(CausalLM& model, const std::string& out_dir, const std::string& source_dir,
                   torch::Dtype dtype, int64_t max_shard_bytes);

// Writes the model's files into an existing directory (no rename): used inside checkpoint dirs.
void write_hf_model_files(CausalLM& model, const std::string& dir, const std::string& source_dir,
                          torch::Dtype dtype, int64_t max_shard_bytes);

// The files carried from a source model dir into every saved model.
const std::vector<std::string>& hf_side_files();

torch::Dtype parse_dtype(const std::string& name);  // fp32 | bf16 | fp16
std::string hf_dtype_name(torch::Dtype dtype);       // float32 | bfloat16 | float16

}  // namespace distillery
