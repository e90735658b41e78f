#include "common/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs_util.h"

namespace distillery {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

torch::Dtype dtype_from_safetensors(const std::string& s, const std::string& where) {
  if (s == "F32") return torch::kFloat32;
  if (s == "BF16") return torch::kBFloat16;
  if (s == "F16") return torch::kFloat16;
  if (s == "F64") return torch::kFloat64;
  if (s == "I64") return torch::kInt64;
  if (s == "I32") return torch::kInt32;
  if (s == "I16") return torch::kInt16;
  if (s == "I8") return torch::kInt8;
  if (s == "U8") return torch::kUInt8;
  if (s == "BOOL") return torch::kBool;
  DIST_FAIL(where, ": unsupported safetensors dtype '", s, "'");
}

}  // namespace

std::string dtype_to_safetensors(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return "F32";
    case torch::kBFloat16: return "BF16";
    case torch::kFloat16: return "F16";
    case torch::kFloat64: return "F64";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kInt16: return "I16";
    case torch::kInt8: return "I8";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default: DIST_ASSERT(false, "dtype without a safetensors name: ", dtype);
  }
  return "";
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  DIST_CHECK(fd >= 0, path, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  ::fstat(fd, &st);
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    DIST_FAIL(path, ": not a safetensors file (", map_size_, " bytes)");
  }
  map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  DIST_CHECK(map_ != MAP_FAILED, path, ": mmap failed (", std::strerror(errno), ")");
  const auto* bytes = static_cast<const uint8_t*>(map_);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  DIST_CHECK(header_len <= map_size_ - 8, path, ": header length ", header_len, " exceeds file size ", map_size_);
  data_ = bytes + 8 + header_len;
  const size_t data_size = map_size_ - 8 - header_len;
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(bytes + 8), reinterpret_cast<const char*>(bytes + 8 + header_len));
  } catch (const json::exception& e) {
    DIST_FAIL(path, ": malformed safetensors header (", e.what(), ")");
  }
  DIST_CHECK(header.is_object(), path, ": safetensors header is not a JSON object");
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      for (auto m = it->begin(); m != it->end(); ++m)
        if (m->is_string()) metadata_[m.key()] = m->get<std::string>();
      continue;
    }
    const std::string where = path + ": tensor '" + it.key() + "'";
    try {
      SafetensorsEntry e;
      e.dtype = dtype_from_safetensors(it->at("dtype").get<std::string>(), where);
      e.shape = it->at("shape").get<std::vector<int64_t>>();
      auto off = it->at("data_offsets").get<std::vector<size_t>>();
      DIST_CHECK(off.size() == 2 && off[0] <= off[1] && off[1] <= data_size, where, ": data_offsets out of bounds");
      e.begin = off[0];
      e.end = off[1];
      int64_t numel = 1;
      for (auto d : e.shape) numel *= d;
      DIST_CHECK(static_cast<size_t>(numel) * torch::elementSize(e.dtype) == e.end - e.begin, where,
                 ": byte size does not match shape and dtype");
      entries_[it.key()] = e;
    } catch (const json::exception& ex) {
      DIST_FAIL(where, ": malformed header entry (", ex.what(), ")");
    }
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ && map_ != MAP_FAILED) ::munmap(map_, map_size_);
}

torch::Tensor SafetensorsFile::view(const std::string& name) const {
  auto it = entries_.find(name);
  DIST_CHECK(it != entries_.end(), path_, ": no tensor '", name, "'");
  const auto& e = it->second;
  // from_blob wants a non-const pointer; the mapping is read-only and we never write through it.
  return torch::from_blob(const_cast<uint8_t*>(data_ + e.begin), e.shape, torch::TensorOptions().dtype(e.dtype));
}

torch::Tensor SafetensorsFile::load(const std::string& name, torch::Dtype dtype) const {
  return view(name).to(dtype, /*non_blocking=*/false, /*copy=*/true);
}

int64_t TensorMeta::bytes() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n * static_cast<int64_t>(torch::elementSize(dtype));
}

namespace st_detail {

// One file of a plan: its header (entries in name order, 8-byte aligned data) and where each tensor goes.
struct PlannedFile {
  std::string path;
  std::string header;  // with its 8-byte length prefix
  std::map<std::string, std::pair<uint64_t, TensorMeta>> at;  // name -> (absolute offset, meta)
};

PlannedFile plan_file(const std::string& path, std::vector<TensorMeta> tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::sort(tensors.begin(), tensors.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<std::pair<std::string, uint64_t>> rel;
  for (const auto& t : tensors) {
    const uint64_t bytes = static_cast<uint64_t>(t.bytes());
    header[t.name] = {{"dtype", dtype_to_safetensors(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    rel.emplace_back(t.name, offset);
    offset += bytes;
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8) h.push_back(' ');  // data section 8-byte aligned
  PlannedFile f;
  f.path = path;
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) f.header.push_back(static_cast<char>(static_cast<uint8_t>(n >> (8 * i))));
  f.header += h;
  for (size_t i = 0; i < tensors.size(); ++i) f.at[tensors[i].name] = {f.header.size() + rel[i].second, tensors[i]};
  return f;
}

}  // namespace st_detail

struct SafetensorsDirWriter::Impl {
  std::string dir, stem;
  std::vector<st_detail::PlannedFile> files;
  std::vector<std::unique_ptr<AtomicFile>> out;
  std::map<std::string, size_t> file_of;
  std::set<std::string> written;
  int64_t total = 0;
};

SafetensorsDirWriter::SafetensorsDirWriter(const std::string& dir, const std::vector<TensorMeta>& plan,
                                           int64_t max_shard_bytes, const std::string& stem)
    : impl_(std::make_unique<Impl>()) {
  impl_->dir = dir;
  impl_->stem = stem;
  std::vector<std::vector<TensorMeta>> shards(1);
  int64_t in_shard = 0;
  for (const auto& t : plan) {
    if (in_shard > 0 && in_shard + t.bytes() > max_shard_bytes) shards.emplace_back(), in_shard = 0;
    shards.back().push_back(t);
    in_shard += t.bytes();
    impl_->total += t.bytes();
  }
  char name[128];
  for (size_t i = 0; i < shards.size(); ++i) {
    if (shards.size() == 1)
      std::snprintf(name, sizeof(name), "%s.safetensors", stem.c_str());
    else
      std::snprintf(name, sizeof(name), "%s-%05zu-of-%05zu.safetensors", stem.c_str(), i + 1, shards.size());
    impl_->files.push_back(st_detail::plan_file((fs::path(dir) / name).string(), shards[i], {{"format", "pt"}}));
    for (const auto& t : shards[i]) impl_->file_of[t.name] = i;
    impl_->out.push_back(std::make_unique<AtomicFile>(impl_->files.back().path));
    impl_->out.back()->write(impl_->files.back().header);
  }
}

SafetensorsDirWriter::~SafetensorsDirWriter() = default;

void SafetensorsDirWriter::write(const std::string& name, const torch::Tensor& t) {
  auto it = impl_->file_of.find(name);
  DIST_ASSERT(it != impl_->file_of.end(), "safetensors writer: '", name, "' is not in the plan");
  const auto& [offset, meta] = impl_->files[it->second].at.at(name);
  DIST_ASSERT(t.scalar_type() == meta.dtype && t.sizes().vec() == meta.shape, "safetensors writer: '", name, "' is ",
              t.sizes(), " ", t.scalar_type(), ", planned ", c10::IntArrayRef(meta.shape), " ", meta.dtype);
  DIST_ASSERT(impl_->written.insert(name).second, "safetensors writer: '", name, "' written twice");
  auto c = t.detach().to(torch::kCPU).contiguous();
  impl_->out[it->second]->write_at(offset, c.data_ptr(), c.numel() * c.element_size());
}

void SafetensorsDirWriter::commit() {
  DIST_ASSERT(impl_->written.size() == impl_->file_of.size(), "safetensors writer: ", impl_->written.size(), " of ",
              impl_->file_of.size(), " tensors written");
  for (auto& f : impl_->out) f->commit();
  if (impl_->files.size() == 1) return;
  json weight_map = json::object();
  for (const auto& [name, i] : impl_->file_of) weight_map[name] = fs::path(impl_->files[i].path).filename().string();
  json index = {{"metadata", {{"total_size", impl_->total}}}, {"weight_map", weight_map}};
  write_json_file((fs::path(impl_->dir) / (impl_->stem + ".safetensors.index.json")).string(), index);
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<TensorMeta> plan;
  for (const auto& [name, t] : tensors) plan.push_back({name, t.scalar_type(), t.sizes().vec()});
  auto f = st_detail::plan_file(path, plan, metadata);
  AtomicFile out(path);
  out.write(f.header);
  for (const auto& [name, t] : tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    out.write_at(f.at.at(name).first, c.data_ptr(), c.numel() * c.element_size());
  }
  out.commit();
}

SafetensorsSet SafetensorsSet::open_dir(const std::string& dir, const std::string& stem) {
  SafetensorsSet set;
  const fs::path single = fs::path(dir) / (stem + ".safetensors");
  const fs::path index = fs::path(dir) / (stem + ".safetensors.index.json");
  if (fs::exists(single)) {
    set.files_.push_back(std::make_shared<SafetensorsFile>(single.string()));
    set.describe_ = single.string();
  } else if (fs::exists(index)) {
    json j = read_json_file(index.string());
    DIST_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), index.string(), ": missing 'weight_map'");
    std::map<std::string, size_t> file_ids;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      const std::string shard = it->get<std::string>();
      if (!file_ids.count(shard)) {
        file_ids[shard] = set.files_.size();
        set.files_.push_back(std::make_shared<SafetensorsFile>((fs::path(dir) / shard).string()));
      }
      DIST_CHECK(set.files_[file_ids[shard]]->contains(it.key()), index.string(), ": weight_map names '", it.key(),
                 "' in ", shard, ", which does not hold it");
    }
    set.describe_ = index.string();
  } else {
    DIST_FAIL(dir, ": no ", stem, ".safetensors or ", stem, ".safetensors.index.json");
  }
  for (size_t i = 0; i < set.files_.size(); ++i)
    for (const auto& kv : set.files_[i]->entries()) set.where_[kv.first] = i;
  return set;
}

const SafetensorsEntry& SafetensorsSet::entry(const std::string& name) const {
  auto it = where_.find(name);
  DIST_CHECK(it != where_.end(), describe_, ": missing tensor '", name, "'");
  return files_[it->second]->entries().at(name);
}

torch::Tensor SafetensorsSet::load(const std::string& name, torch::Dtype dtype) const {
  auto it = where_.find(name);
  DIST_CHECK(it != where_.end(), describe_, ": missing tensor '", name, "'");
  return files_[it->second]->load(name, dtype);
}

torch::Tensor SafetensorsSet::view(const std::string& name) const {
  auto it = where_.find(name);
  DIST_CHECK(it != where_.end(), describe_, ": missing tensor '", name, "'");
  return files_[it->second]->view(name);
}

const std::string& SafetensorsSet::file_of(const std::string& name) const {
  auto it = where_.find(name);
  DIST_CHECK(it != where_.end(), describe_, ": missing tensor '", name, "'");
  return files_[it->second]->path();
}

void check_loadable_dtype(torch::Dtype stored, torch::Dtype param, const std::string& file, const std::string& name) {
  if (!c10::isFloatingType(param) || c10::isFloatingType(stored)) return;
  DIST_FAIL(file, ": tensor '", name, "' is stored as ", dtype_to_safetensors(stored), ", which cannot hold the ",
            dtype_to_safetensors(param), " parameter (a floating-point dtype is needed)");
}

void check_finite(const torch::Tensor& loaded, const std::string& file, const std::string& name) {
  if (!c10::isFloatingType(loaded.scalar_type())) return;
  const int64_t bad = loaded.numel() - torch::isfinite(loaded).sum().item<int64_t>();
  DIST_CHECK(bad == 0, file, ": tensor '", name, "' holds ", bad, " non-finite value(s) (NaN or Inf) out of ",
             loaded.numel());
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> out;
  for (const auto& kv : where_) out.push_back(kv.first);
  return out;
}

void save_safetensors_dir(const std::string& dir, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                          int64_t max_shard_bytes, const std::string& stem) {
  std::vector<TensorMeta> plan;
  for (const auto& [name, t] : tensors) plan.push_back({name, t.scalar_type(), t.sizes().vec()});
  SafetensorsDirWriter w(dir, plan, max_shard_bytes, stem);
  for (const auto& [name, t] : tensors) w.write(name, t);
  w.commit();
}

}  // namespace distillery
