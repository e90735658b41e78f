#include "data/jsonl.h"

#include <fstream>

#include "common/error.h"

namespace distillery {

JsonlFile::JsonlFile(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_, std::ios::binary);
  DIST_CHECK(in, path_, ": cannot open data file");
  std::string line;
  uint64_t offset = 0;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const uint64_t len = line.size();
    const bool blank = line.find_first_not_of(" \t\r") == std::string::npos;
    if (!blank) {
      DIST_CHECK(len < (1ull << 32), path_, ":", lineno, ": line longer than 4 GiB");
      offsets_.push_back(offset);
      lengths_.push_back(static_cast<uint32_t>(len));
      lines_.push_back(lineno);
    }
    offset += len + 1;
  }
}

nlohmann::ordered_json JsonlFile::record(size_t i) const {
  if (!in_.is_open()) in_.open(path_, std::ios::binary);
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(offsets_[i]));
  std::string text(lengths_[i], '\0');
  in_.read(text.data(), lengths_[i]);
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    DIST_FAIL(where(i), ": malformed JSON (", e.what(), ")");
  }
}

}  // namespace distillery
