// A JSONL file indexed by line offsets: only the offsets live in memory, so multi-GB files are
// fine; lines are parsed on demand. Blank lines are skipped (but counted for line numbers).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace distillery {

class JsonlFile {
 public:
  explicit JsonlFile(std::string path);  // missing file -> UserError
  size_t size() const { return offsets_.size(); }
  // Record i parsed, object keys in file order (chat templates print objects with `tojson`, which
  // keeps Python's dict order); malformed JSON -> UserError "path:LINE: malformed JSON (...)".
  nlohmann::ordered_json record(size_t i) const;
  int64_t line_number(size_t i) const { return lines_[i]; }
  const std::string& path() const { return path_; }
  std::string where(size_t i) const { return path_ + ":" + std::to_string(lines_[i]); }

 private:
  std::string path_;
  mutable std::ifstream in_;  // record() is not thread-safe
  std::vector<uint64_t> offsets_;
  std::vector<uint32_t> lengths_;
  std::vector<int64_t> lines_;
};

}  // namespace distillery
