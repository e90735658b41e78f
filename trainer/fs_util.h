// Files that are either whole or absent: every file distillery writes goes to a temp name, is
// fsynced, then renamed; directories (checkpoints) are built under a temp name and renamed last.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace distillery {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // an uncommitted file is removed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t bytes);
  void write(const std::string& s) { write(s.data(), s.size()); }
  // Writes at byte `offset` of the file (which grows as needed), for files filled out of order.
  void write_at(uint64_t offset, const void* data, size_t bytes);
  void commit();  // fsync + rename into place

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

void write_text_file(const std::string& path, const std::string& text);
std::string read_text_file(const std::string& path);
// Parse errors name the file and line.
nlohmann::json read_json_file(const std::string& path);
void write_json_file(const std::string& path, const nlohmann::json& j, int indent = 2);
void fsync_dir(const std::string& dir);
// Renames a fully written temp directory onto `final_dir` (replacing an old one) and fsyncs the parent.
void commit_dir(const std::string& tmp_dir, const std::string& final_dir);

}  // namespace distillery
