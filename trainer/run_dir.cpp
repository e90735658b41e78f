#include "trainer/run_dir.h"

#include <sys/file.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>
#include <vector>

#include "common/error.h"
#include "common/fs_util.h"

namespace distillery {
namespace fs = std::filesystem;
namespace {

const std::regex kStepDir("step-([0-9]+)");

std::string hostname() {
  char buf[256] = {0};
  return ::gethostname(buf, sizeof(buf) - 1) == 0 ? std::string(buf) : std::string("?");
}

// step-N directories under run_dir/checkpoints, complete or not, sorted by step.
std::vector<std::pair<int64_t, fs::path>> step_dirs(const fs::path& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  const fs::path root = run_dir / "checkpoints";
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (e.is_directory() && std::regex_match(name, m, kStepDir)) out.emplace_back(std::stoll(m[1].str()), e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool complete(const fs::path& step_dir) { return fs::exists(step_dir / "trainer_state" / "state.json"); }

void remove_tree(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  DIST_CHECK(!ec, p.string(), ": cannot delete (", ec.message(), ")");
}

// Leftovers of an interrupted run: temp and half-deleted checkpoints. Returns what was removed.
std::vector<std::string> clean_leftovers(const fs::path& run_dir) {
  std::vector<std::string> removed;
  const fs::path root = run_dir / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return removed;
  std::vector<fs::path> doomed;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0 || name.rfind(".trash-", 0) == 0) doomed.push_back(e.path());
  }
  for (const auto& [step, dir] : step_dirs(run_dir))
    if (!complete(dir)) doomed.push_back(dir);  // a rotation killed mid-delete (state.json goes first)
  std::sort(doomed.begin(), doomed.end());
  for (const auto& p : doomed) {
    remove_tree(p);
    removed.push_back("checkpoints/" + p.filename().string());
  }
  return removed;
}

// What of an earlier run the directory holds: its checkpoints, metrics and final model.
std::vector<std::string> run_files(const fs::path& run_dir) {
  std::vector<std::string> found;
  for (const auto& [step, dir] : step_dirs(run_dir)) found.push_back("checkpoints/" + dir.filename().string());
  for (const char* f : {"metrics.jsonl", "final"})
    if (fs::exists(run_dir / f)) found.push_back(f);
  return found;
}

std::string joined(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
  return s;
}

}  // namespace

RunDirLock::RunDirLock(const std::string& dir) {
  const std::string path = (fs::path(dir) / ".lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  DIST_CHECK(fd_ >= 0, path, ": cannot open the run lock (", std::strerror(errno), ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder = "unknown holder";
    try {
      holder = read_text_file(path);
      while (!holder.empty() && holder.back() == '\n') holder.pop_back();
    } catch (const UserError&) {
    }
    ::close(fd_);
    fd_ = -1;
    DIST_CHECK(err != EWOULDBLOCK, "trainer.output_dir=", dir, ": another run is using this directory (", holder,
               "); wait for it to finish or choose another trainer.output_dir");
    DIST_FAIL(path, ": cannot lock (", std::strerror(err), ")");
  }
  const std::string me = "host " + hostname() + " pid " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t n = ::pwrite(fd_, me.data(), me.size(), 0);
  }
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

RunDirState prepare_run_dir(const TrainerConfig& tc) {
  const fs::path dir(tc.output_dir);
  std::error_code ec;
  DIST_CHECK(!fs::exists(dir, ec) || fs::is_directory(dir, ec), "trainer.output_dir=", tc.output_dir,
             ": exists and is not a directory");
  fs::create_directories(dir, ec);
  DIST_CHECK(!ec, "trainer.output_dir=", tc.output_dir, ": cannot create the run directory (", ec.message(), ")");
  DIST_CHECK(::access(dir.c_str(), W_OK) == 0, "trainer.output_dir=", tc.output_dir, ": not writable (",
             std::strerror(errno), ")");
  DIST_CHECK(!(tc.overwrite_output_dir && tc.resume != "none"), "trainer.overwrite_output_dir=true deletes the run in ",
             tc.output_dir, ", trainer.resume=", tc.resume, " continues one: set trainer.resume=none to start over");

  RunDirState state;
  state.lock = std::make_unique<RunDirLock>(tc.output_dir);
  const auto cleaned = clean_leftovers(dir);
  if (!cleaned.empty()) state.note = "removed leftovers of an interrupted run: " + joined(cleaned);

  const auto previous = run_files(dir);
  if (tc.resume == "auto") {
    if (!step_dirs(dir).empty()) return state;  // continued from the newest (all complete by now)
    DIST_CHECK(previous.empty(), "trainer.output_dir=", tc.output_dir, " holds a finished or checkpoint-less run (",
               joined(previous), ") that trainer.resume=auto cannot continue; set trainer.resume=none "
               "trainer.overwrite_output_dir=true to replace it, or choose another trainer.output_dir");
    return state;
  }
  if (tc.resume == "none") {
    if (previous.empty()) return state;
    DIST_CHECK(tc.overwrite_output_dir, "trainer.output_dir=", tc.output_dir, " already holds a run (",
               joined(previous), "); set trainer.overwrite_output_dir=true to delete it and start over, or "
               "trainer.resume=auto to continue it");
    for (const char* f : {"checkpoints", "final", "metrics.jsonl", "config.yaml"}) remove_tree(dir / f);
    state.note = "trainer.overwrite_output_dir: deleted the earlier run (" + joined(previous) + ")";
    return state;
  }
  // An explicit checkpoint.
  const fs::path from(tc.resume);
  DIST_CHECK(fs::is_directory(from, ec), "trainer.resume=", tc.resume,
             ": neither auto, none nor an existing checkpoint directory");
  DIST_CHECK(complete(from), "trainer.resume=", tc.resume,
             ": not a complete distillery checkpoint (no trainer_state/state.json)");
  const int64_t from_step = read_json_file((from / "trainer_state" / "state.json").string()).value("step", int64_t{0});
  std::vector<std::string> newer;
  for (const auto& [step, d] : step_dirs(dir))
    if (step > from_step) newer.push_back("checkpoints/" + d.filename().string());
  DIST_CHECK(newer.empty(), "trainer.resume=", tc.resume, ": trainer.output_dir=", tc.output_dir,
             " holds newer checkpoints (", joined(newer), ") that would mix with this run; move them away first");
  return state;
}

void rotate_checkpoints(const std::string& run_dir, int64_t step, int64_t keep_last) {
  std::vector<fs::path> ours;
  for (const auto& [s, d] : step_dirs(run_dir))
    if (s <= step && complete(d)) ours.push_back(d);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < ours.size(); ++i) {
    const fs::path trash = ours[i].parent_path() / (".trash-" + ours[i].filename().string());
    std::error_code ec;
    fs::rename(ours[i], trash, ec);
    DIST_CHECK(!ec, ours[i].string(), ": cannot delete (", ec.message(), ")");
    remove_tree(trash);
  }
}

}  // namespace distillery
