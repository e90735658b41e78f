// The run directory (trainer.output_dir) belongs to one run at a time, and a run never mixes its
// files with an earlier run's or deletes them unasked. docs/reliability.md states the rules.
#pragma once

#include <memory>
#include <string>

#include "trainer/trainer_config.h"

namespace distillery {

// An exclusive OS lock (flock) on DIR/.lock, held while the object lives; the kernel releases it
// when the process dies, so a crashed run never leaves a stale lock. The file records the holder
// ("host H pid P"). A directory another process holds -> UserError naming it and the holder.
class RunDirLock {
 public:
  explicit RunDirLock(const std::string& dir);
  ~RunDirLock();
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

// The lead rank's hold on the run directory, and what it found there.
struct RunDirState {
  std::unique_ptr<RunDirLock> lock;  // held for the whole run
  std::string note;                  // what was cleaned or cleared, for the log; empty when nothing
};

// Makes `tc.output_dir` ready for a run, on the lead rank (the others only read it afterwards):
// creates it, takes its RunDirLock, removes what an interrupted run left behind (checkpoints/.tmp-*, checkpoints/.trash-*
// and step-N directories without trainer_state/state.json), then decides where the run starts:
//   resume: auto   the newest complete checkpoint; a directory that holds a run without one
//                  (metrics.jsonl, final/) is refused unless overwrite_output_dir
//   resume: none   a fresh start; a directory that holds a run is refused unless
//                  overwrite_output_dir, which deletes that run's config.yaml, metrics.jsonl,
//                  checkpoints/ and final/ first
//   resume: DIR    that checkpoint; checkpoints in output_dir newer than it are refused (rotation
//                  and a later auto resume would otherwise mix the two runs)
// Errors are UserErrors naming the key and the path (and the OS reason for a filesystem failure).
RunDirState prepare_run_dir(const TrainerConfig& tc);

// Deletes checkpoints/step-N directories of `run_dir` beyond the newest `keep_last` among those of
// step <= `step` (the current run's), each renamed to checkpoints/.trash-step-N first, so a kill
// mid-delete leaves a name prepare_run_dir cleans up and resume never picks.
void rotate_checkpoints(const std::string& run_dir, int64_t step, int64_t keep_last);

}  // namespace distillery
