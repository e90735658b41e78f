// Safetensors files (https://huggingface.co/docs/safetensors): 8-byte little-endian header size,
// a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then raw data.
// Reading memory-maps the file; writing goes through a temp file and rename.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace distillery {

struct SafetensorsEntry {
  torch::Dtype dtype;
  std::vector<int64_t> shape;
  size_t begin = 0, end = 0;  // byte offsets into the data section
};

class SafetensorsFile {
 public:
  // Maps `path` and parses its header; a malformed file -> UserError naming it.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  // A tensor viewing the mapped bytes; valid while this object lives. Clone to keep it.
  torch::Tensor view(const std::string& name) const;
  // An owned copy converted to `dtype`.
  torch::Tensor load(const std::string& name, torch::Dtype dtype) const;

 private:
  std::string path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (contiguous CPU copies are made as needed) in name order, atomically.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

std::string dtype_to_safetensors(torch::Dtype dtype);

// Loading a stored tensor into a parameter casts it; only a cast that keeps the values' kind is
// allowed: a floating-point parameter needs a floating-point tensor (an integer or bool tensor in
// its place is a broken or mislabelled checkpoint). Otherwise UserError naming `file` and `name`.
void check_loadable_dtype(torch::Dtype stored, torch::Dtype param, const std::string& file, const std::string& name);

// A loaded floating-point tensor holding NaN or +-Inf would train to `loss nan`: UserError naming
// `file` and `name` and how many of its values are non-finite.
void check_finite(const torch::Tensor& loaded, const std::string& file, const std::string& name);

// A set of tensors spread over one file or an index + shards, as Hugging Face saves models.
class SafetensorsSet {
 public:
  // Opens DIR/model.safetensors, or DIR/model.safetensors.index.json and its shards.
  // `stem` is "model" for models and "adapter_model" for PEFT adapters.
  static SafetensorsSet open_dir(const std::string& dir, const std::string& stem = "model");
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  torch::Tensor load(const std::string& name, torch::Dtype dtype) const;
  // A view of the mapped bytes (valid while this set lives): slicing it reads only the slice.
  torch::Tensor view(const std::string& name) const;
  std::vector<std::string> names() const;
  std::string describe() const { return describe_; }
  // The path of the file (the shard, for an index) that holds `name`.
  const std::string& file_of(const std::string& name) const;

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
  std::string describe_;
};

// Saves `tensors` into DIR as STEM.safetensors, or as STEM-0000k-of-0000n.safetensors shards plus
// STEM.safetensors.index.json when they exceed `max_shard_bytes`.
void save_safetensors_dir(const std::string& dir, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                          int64_t max_shard_bytes, const std::string& stem = "model");

// A tensor to be written: its name, dtype and shape.
struct TensorMeta {
  std::string name;
  torch::Dtype dtype;
  std::vector<int64_t> shape;
  int64_t bytes() const;
};

// The files of save_safetensors_dir, byte for byte, written one tensor at a time in any order from a
// plan made up front: each tensor goes straight to its offset, so a model gathered from many ranks
// never has to be in memory at once. Nothing is visible in DIR before commit().
class SafetensorsDirWriter {
 public:
  SafetensorsDirWriter(const std::string& dir, const std::vector<TensorMeta>& plan, int64_t max_shard_bytes,
                       const std::string& stem = "model");
  ~SafetensorsDirWriter();
  // `t` must match the plan's dtype and shape for `name`; each name once.
  void write(const std::string& name, const torch::Tensor& t);
  // Every planned tensor written: fsync and rename the files, write the index when sharded.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distillery
