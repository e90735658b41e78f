#include "common/fs_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace distillery {
namespace fs = std::filesystem;

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp." + std::to_string(::getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  DIST_CHECK(f_, path_, ": cannot write (", std::strerror(errno), ")");
}

AtomicFile::~AtomicFile() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t bytes) {
  DIST_CHECK(std::fwrite(data, 1, bytes, f_) == bytes, path_, ": write failed (", std::strerror(errno), ")");
}

void AtomicFile::write_at(uint64_t offset, const void* data, size_t bytes) {
  DIST_CHECK(::fseeko(f_, static_cast<off_t>(offset), SEEK_SET) == 0, path_, ": seek failed (", std::strerror(errno), ")");
  write(data, bytes);
}

void AtomicFile::commit() {
  DIST_CHECK(std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0, path_, ": flush failed (", std::strerror(errno), ")");
  std::fclose(f_);
  f_ = nullptr;
  DIST_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0, path_, ": rename failed (", std::strerror(errno), ")");
}

void write_text_file(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

void copy_file_atomic(const std::string& src, const std::string& dst) {
  std::ifstream in(src, std::ios::binary);
  DIST_CHECK(in, src, ": cannot open (", std::strerror(errno), ")");
  AtomicFile out(dst);
  std::vector<char> buf(size_t{1} << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) out.write(buf.data(), static_cast<size_t>(in.gcount()));
  }
  DIST_CHECK(in.eof(), src, ": read failed");
  out.commit();
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DIST_CHECK(in, path, ": cannot open");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    size_t line = 1;
    for (size_t i = 0; i < std::min<size_t>(e.byte, text.size()); ++i) line += text[i] == '\n';
    DIST_FAIL(path, ":", line, ": malformed JSON");
  }
}

void write_json_file(const std::string& path, const nlohmann::json& j, int indent) {
  write_text_file(path, j.dump(indent) + "\n");
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void check_output_dir(const std::string& out, bool overwrite,
                      const std::vector<std::pair<std::string, std::string>>& inputs) {
  std::error_code ec;
  const fs::path target = fs::weakly_canonical(fs::absolute(out), ec);
  for (const auto& [flag, path] : inputs) {
    const fs::path in = fs::weakly_canonical(fs::absolute(path), ec);
    auto under = [](const fs::path& inner, const fs::path& outer) {
      auto [o, i] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
      return o == outer.end();
    };
    DIST_CHECK(!under(in, target) && !under(target, in), "--out ", out, " overlaps ", flag, " ", path,
               ": writing it would destroy the input; choose another --out");
  }
  if (!fs::exists(target, ec)) return;
  const bool empty_dir = fs::is_directory(target, ec) && fs::is_empty(target, ec);
  DIST_CHECK(empty_dir || overwrite, "--out ", out, ": exists", fs::is_directory(target, ec) ? " and is not empty" : "",
             "; pass --overwrite to replace it");
  DIST_CHECK(fs::is_directory(target, ec), "--out ", out, ": exists and is not a directory");
}

void commit_dir(const std::string& tmp_dir, const std::string& final_dir) {
  fsync_dir(tmp_dir);
  std::error_code ec;
  if (fs::exists(final_dir)) {
    // Move the old one aside first so a crash leaves either the old or the new, never neither.
    const std::string old = final_dir + ".old";
    fs::remove_all(old, ec);
    fs::rename(final_dir, old, ec);
    DIST_CHECK(!ec, final_dir, ": cannot replace (", ec.message(), ")");
    fs::rename(tmp_dir, final_dir, ec);
    DIST_CHECK(!ec, final_dir, ": rename failed (", ec.message(), ")");
    fs::remove_all(old, ec);
  } else {
    fs::rename(tmp_dir, final_dir, ec);
    DIST_CHECK(!ec, final_dir, ": rename failed (", ec.message(), ")");
  }
  fsync_dir(fs::path(final_dir).parent_path().string());
}

}  // namespace distillery
