// Files that are either whole or absent: every file distillery writes goes to a temp name, is
// fsynced, then renamed; directories (checkpoints) are built under a temp name and renamed last.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

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
// Copies `src` to `dst` through an AtomicFile: `dst` is whole or absent, and a failure (a full disk)
// is a UserError naming `dst` and the OS reason (std::filesystem::copy_file reports EIO instead).
void copy_file_atomic(const std::string& src, const std::string& dst);
std::string read_text_file(const std::string& path);
// Parse errors name the file and line.
nlohmann::json read_json_file(const std::string& path);
void write_json_file(const std::string& path, const nlohmann::json& j, int indent = 2);
void fsync_dir(const std::string& dir);
// Checks a command's output directory before any work: an existing non-empty `out` needs
// `overwrite` (the --overwrite flag), and `out` may never be, hold or sit inside one of `inputs`
// (flag -> path), since replacing it would destroy what is being read. UserError naming the flags.
void check_output_dir(const std::string& out, bool overwrite, const std::vector<std::pair<std::string, std::string>>& inputs);
// Renames a fully written temp directory onto `final_dir` (replacing an old one) and fsyncs the parent.
void commit_dir(const std::string& tmp_dir, const std::string& final_dir);

}  // namespace distillery
