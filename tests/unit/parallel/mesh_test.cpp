// Rank arithmetic of the device mesh, without MPI: coordinates, group membership, the split
// colors that form the groups, and the validation messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "parallel/mesh.h"
#include "common/error.h"

namespace distillery::parallel {
namespace {

constexpr MeshGroup kAllMeshGroups[] = {MeshGroup::kDp, MeshGroup::kTp, MeshGroup::kEp, MeshGroup::kExpertDp};

std::string mesh_error_of(int world, MeshConfig config) {
  try {
    mesh_coords(world, 0, config);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(MeshCoords, MatchesDocumentedLayoutForWorld8Tp2Ep2) {
  const MeshConfig config{2, 2};
  const int tp_rank[] = {0, 1, 0, 1, 0, 1, 0, 1};
  const int dp_rank[] = {0, 0, 1, 1, 2, 2, 3, 3};
  const int ep_rank[] = {0, 0, 1, 1, 0, 0, 1, 1};
  for (int r = 0; r < 8; ++r) {
    const MeshCoords c = mesh_coords(8, r, config);
    EXPECT_EQ(c.dp_size, 4);
    EXPECT_EQ(c.tp_size, 2);
    EXPECT_EQ(c.ep_size, 2);
    EXPECT_EQ(c.expert_dp_size, 2);
    EXPECT_EQ(c.tp_rank, tp_rank[r]) << "rank " << r;
    EXPECT_EQ(c.dp_rank, dp_rank[r]) << "rank " << r;
    EXPECT_EQ(c.ep_rank, ep_rank[r]) << "rank " << r;
  }
  const MeshCoords r0 = mesh_coords(8, 0, config);
  EXPECT_EQ(r0.group_ranks(MeshGroup::kTp), (std::vector<int>{0, 1}));
  EXPECT_EQ(r0.group_ranks(MeshGroup::kDp), (std::vector<int>{0, 2, 4, 6}));
  EXPECT_EQ(r0.group_ranks(MeshGroup::kEp), (std::vector<int>{0, 2}));
  EXPECT_EQ(r0.group_ranks(MeshGroup::kExpertDp), (std::vector<int>{0, 4}));
  const MeshCoords r7 = mesh_coords(8, 7, config);
  EXPECT_EQ(r7.group_ranks(MeshGroup::kTp), (std::vector<int>{6, 7}));
  EXPECT_EQ(r7.group_ranks(MeshGroup::kDp), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(r7.group_ranks(MeshGroup::kEp), (std::vector<int>{5, 7}));
  EXPECT_EQ(r7.group_ranks(MeshGroup::kExpertDp), (std::vector<int>{3, 7}));
  const MeshCoords r2 = mesh_coords(8, 2, config);
  EXPECT_EQ(r2.group_ranks(MeshGroup::kExpertDp), (std::vector<int>{2, 6}));
  EXPECT_EQ(r2.expert_dp_rank, 0);
  EXPECT_EQ(mesh_coords(8, 6, config).expert_dp_rank, 1);
}

TEST(MeshCoords, TpGroupsAreConsecutiveRanks) {
  for (int r = 0; r < 12; ++r) {
    const auto ranks = mesh_coords(12, r, MeshConfig{4, 1}).group_ranks(MeshGroup::kTp);
    const int first = r / 4 * 4;
    EXPECT_EQ(ranks, (std::vector<int>{first, first + 1, first + 2, first + 3})) << "rank " << r;
  }
}

// For every valid layout up to 16 ranks: each group kind partitions the world; a rank's group
// is exactly the ranks with its split color, ordered by key, and its index there is its key.
TEST(MeshCoords, SplitColorsAndKeysFormTheListedGroups) {
  int layouts = 0;
  for (int world = 1; world <= 16; ++world) {
    for (int tp = 1; tp <= world; ++tp) {
      for (int ep = 1; ep <= world; ++ep) {
        const MeshConfig config{tp, ep};
        if (!mesh_errors(world, config).empty()) continue;
        ++layouts;
        std::vector<MeshCoords> all;
        for (int r = 0; r < world; ++r) all.push_back(mesh_coords(world, r, config));
        for (MeshGroup g : kAllMeshGroups) {
          std::map<int, std::vector<std::pair<int, int>>> by_color;  // color -> (key, rank)
          for (int r = 0; r < world; ++r) by_color[all[r].color(g)].push_back({all[r].key(g), r});
          std::set<int> covered;
          for (int r = 0; r < world; ++r) {
            auto members = by_color[all[r].color(g)];
            std::sort(members.begin(), members.end());
            std::vector<int> ranks;
            for (const auto& [key, rank] : members) ranks.push_back(rank);
            ASSERT_EQ(all[r].group_ranks(g), ranks)
                << "world " << world << " tp " << tp << " ep " << ep << " group " << static_cast<int>(g) << " rank " << r;
            EXPECT_EQ(ranks[all[r].key(g)], r);
            covered.insert(r);
          }
          EXPECT_EQ(static_cast<int>(covered.size()), world);
        }
        for (const MeshCoords& c : all) {
          EXPECT_EQ(static_cast<int>(c.group_ranks(MeshGroup::kTp).size()), c.tp_size);
          EXPECT_EQ(static_cast<int>(c.group_ranks(MeshGroup::kDp).size()), c.dp_size);
          EXPECT_EQ(static_cast<int>(c.group_ranks(MeshGroup::kEp).size()), c.ep_size);
          EXPECT_EQ(static_cast<int>(c.group_ranks(MeshGroup::kExpertDp).size()), c.expert_dp_size);
          EXPECT_EQ(c.dp_size * c.tp_size, world);
          EXPECT_EQ(c.ep_size * c.expert_dp_size, c.dp_size);
          // Expert-dp replicas hold the same expert shard: same ep rank and tp rank.
          for (int peer : c.group_ranks(MeshGroup::kExpertDp)) {
            EXPECT_EQ(all[peer].ep_rank, c.ep_rank);
            EXPECT_EQ(all[peer].tp_rank, c.tp_rank);
          }
          for (int peer : c.group_ranks(MeshGroup::kEp)) EXPECT_EQ(all[peer].tp_rank, c.tp_rank);
        }
      }
    }
  }
  EXPECT_GT(layouts, 50);
}

TEST(MeshErrors, TpNotDividingWorldNamesBothValues) {
  EXPECT_EQ(mesh_error_of(6, MeshConfig{4, 1}), "parallel.tp=4 does not divide world size 6 (mpirun -np 6)");
}

TEST(MeshErrors, EpNotDividingDpNamesDpAndHowItArose) {
  EXPECT_EQ(mesh_error_of(4, MeshConfig{2, 4}),
            "parallel.ep=4 does not divide dp=2 (world size 4 / parallel.tp=2)");
}

TEST(MeshErrors, ReportsEveryProblemAtOnce) {
  EXPECT_EQ(mesh_errors(4, MeshConfig{0, 0}),
            (std::vector<std::string>{"parallel.tp=0 must be at least 1", "parallel.ep=0 must be at least 1"}));
  EXPECT_EQ(mesh_error_of(4, MeshConfig{0, -1}),
            "parallel.tp=0 must be at least 1; parallel.ep=-1 must be at least 1");
  EXPECT_TRUE(mesh_errors(4, MeshConfig{2, 2}).empty());
}

TEST(Mesh, OneRankHasOnlyIdentityGroups) {
  Mesh mesh(std::make_shared<LocalCommunicator>(), MeshConfig{});
  EXPECT_EQ(mesh.dp_size(), 1);
  EXPECT_EQ(mesh.tp_size(), 1);
  EXPECT_EQ(mesh.ep_size(), 1);
  for (MeshGroup g : kAllMeshGroups) EXPECT_EQ(mesh.group(g)->size(), 1);
  EXPECT_EQ(mesh.describe(), "world 1 = dp 1 x tp 1, ep 1 (expert-dp 1); this rank: dp 0, tp 0, ep 0");
}

TEST(Mesh, RejectsTpLargerThanOneRank) {
  EXPECT_THROW(Mesh(std::make_shared<LocalCommunicator>(), MeshConfig{2, 1}), UserError);
}

}  // namespace
}  // namespace distillery::parallel
