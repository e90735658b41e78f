// How a process learns from its launcher's environment whether it is one rank of an MPI job.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "parallel/runtime.h"
#include "common/error.h"

namespace distillery::parallel {
namespace {

LaunchInfo detect_with(const std::map<std::string, std::string>& env) {
  return detect_launch([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(DetectLaunch, PlainProcessIsASingleRank) {
  const LaunchInfo info = detect_with({{"HOME", "/root"}});
  EXPECT_FALSE(info.mpi);
  EXPECT_EQ(info.launcher, "single");
  EXPECT_EQ(info.expected_size, 1);
}

TEST(DetectLaunch, OpenMpiMpirun) {
  const LaunchInfo info = detect_with({{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_RANK", "1"}});
  EXPECT_TRUE(info.mpi);
  EXPECT_EQ(info.launcher, "mpirun");
  EXPECT_EQ(info.expected_size, 4);
}

TEST(DetectLaunch, SrunWithPmix) {
  const LaunchInfo info = detect_with(
      {{"PMIX_RANK", "3"}, {"SLURM_STEP_ID", "0"}, {"SLURM_STEP_NUM_TASKS", "16"}, {"SLURM_PROCID", "3"}});
  EXPECT_TRUE(info.mpi);
  EXPECT_EQ(info.launcher, "srun");
  EXPECT_EQ(info.expected_size, 16);
}

TEST(DetectLaunch, SrunWithPmi2) {
  const LaunchInfo info = detect_with({{"PMI_SIZE", "8"}, {"PMI_RANK", "0"}, {"SLURM_STEP_ID", "2"}});
  EXPECT_TRUE(info.mpi);
  EXPECT_EQ(info.launcher, "srun");
  EXPECT_EQ(info.expected_size, 8);
}

TEST(DetectLaunch, SbatchScriptWithoutSrunRunsOneProcess) {
  // The batch step has the job's SLURM_* variables but no step of srun's.
  const LaunchInfo info = detect_with({{"SLURM_JOB_ID", "77"}, {"SLURM_NTASKS", "8"}, {"SLURM_PROCID", "0"}});
  EXPECT_FALSE(info.mpi);
}

TEST(DetectLaunch, SrunWithoutPmiIsRefusedWithTheFix) {
  try {
    detect_with({{"SLURM_STEP_ID", "0"}, {"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_PROCID", "2"}});
    FAIL() << "srun without PMI was accepted";
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("srun started 4 tasks without a PMI plugin"), std::string::npos) << what;
    EXPECT_NE(what.find("srun --mpi=pmix"), std::string::npos) << what;
  }
}

TEST(DetectLaunch, SingleTaskSrunStepIsASingleRank) {
  EXPECT_FALSE(detect_with({{"SLURM_STEP_ID", "0"}, {"SLURM_STEP_NUM_TASKS", "1"}}).mpi);
}

}  // namespace
}  // namespace distillery::parallel
