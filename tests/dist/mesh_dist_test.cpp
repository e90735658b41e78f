// The Mesh's communicators on real ranks: each group holds exactly the world ranks that the
// rank arithmetic lists, in that order, and its collectives stay inside it.
#include <gtest/gtest.h>

#include "parallel/mesh.h"
#include "parallel/runtime.h"
#include "common/error.h"

namespace distillery::parallel {
namespace {

constexpr MeshGroup kMeshDistGroups[] = {MeshGroup::kDp, MeshGroup::kTp, MeshGroup::kEp, MeshGroup::kExpertDp};

// Each group's members as seen through its communicator (allgather of world ranks) must be the
// listed ranks, and a sum over the group must add exactly those ranks.
void expect_groups_match_coords(const Mesh& mesh) {
  for (MeshGroup g : kMeshDistGroups) {
    const std::vector<int> listed = mesh.coords().group_ranks(g);
    Communicator& comm = *mesh.group(g);
    ASSERT_EQ(comm.size(), static_cast<int>(listed.size())) << "group " << static_cast<int>(g);
    torch::Tensor me = torch::full({1}, static_cast<int64_t>(mesh.world_rank()), torch::kLong);
    torch::Tensor members = comm.allgather(me);
    EXPECT_EQ(std::vector<int64_t>(members.data_ptr<int64_t>(), members.data_ptr<int64_t>() + members.numel()),
              std::vector<int64_t>(listed.begin(), listed.end()))
        << "group " << static_cast<int>(g) << " on world rank " << mesh.world_rank();
    EXPECT_EQ(listed[comm.rank()], mesh.world_rank());
    torch::Tensor sum = me.clone();
    comm.allreduce(sum);
    int64_t expected = 0;
    for (int r : listed) expected += r;
    EXPECT_EQ(sum.item<int64_t>(), expected);
  }
}

// Hand-written coordinates of two layouts of this world (2 or 4 ranks, the sizes ctest runs).
TEST(MeshDist, NamedLayoutsHaveTheirHandWrittenGroups) {
  auto world = Runtime::get().world;
  const int r = world->rank();
  ASSERT_TRUE(world->size() == 2 || world->size() == 4) << "dist tests run on 2 or 4 ranks";
  if (world->size() == 4) {
    Mesh mesh(world, MeshConfig{2, 2});  // dp 2 x tp 2, ep 2
    EXPECT_EQ(mesh.dp_size(), 2);
    EXPECT_EQ(mesh.tp_size(), 2);
    EXPECT_EQ(mesh.ep_size(), 2);
    EXPECT_EQ(mesh.expert_dp_size(), 1);
    EXPECT_EQ(mesh.tp_rank(), r % 2);
    EXPECT_EQ(mesh.dp_rank(), r / 2);
    EXPECT_EQ(mesh.ep(), mesh.dp()) << "ep == dp: the ep group is the dp group itself";
    expect_groups_match_coords(mesh);

    Mesh replicas(world, MeshConfig{1, 2});  // dp 4, ep 2: each expert shard on 2 ranks
    EXPECT_EQ(replicas.dp_size(), 4);
    EXPECT_EQ(replicas.expert_dp_size(), 2);
    EXPECT_EQ(replicas.coords().group_ranks(MeshGroup::kEp), r < 2 ? (std::vector<int>{0, 1}) : (std::vector<int>{2, 3}));
    EXPECT_EQ(replicas.coords().group_ranks(MeshGroup::kExpertDp),
              r % 2 == 0 ? (std::vector<int>{0, 2}) : (std::vector<int>{1, 3}));
    expect_groups_match_coords(replicas);
  } else {
    Mesh tp(world, MeshConfig{2, 1});  // tp 2, dp 1
    EXPECT_EQ(tp.dp_size(), 1);
    EXPECT_EQ(tp.tp_rank(), r);
    EXPECT_EQ(tp.coords().group_ranks(MeshGroup::kTp), (std::vector<int>{0, 1}));
    expect_groups_match_coords(tp);

    Mesh ep(world, MeshConfig{1, 2});  // dp 2, ep 2: no expert replicas
    EXPECT_EQ(ep.dp_size(), 2);
    EXPECT_EQ(ep.expert_dp_size(), 1);
    EXPECT_EQ(ep.ep_rank(), r);
    EXPECT_EQ(ep.coords().group_ranks(MeshGroup::kExpertDp), (std::vector<int>{r}));
    expect_groups_match_coords(ep);
  }
}

TEST(MeshDist, EveryValidLayoutOfThisWorld) {
  auto world = Runtime::get().world;
  for (int tp = 1; tp <= world->size(); ++tp)
    for (int ep = 1; ep <= world->size(); ++ep) {
      const MeshConfig config{tp, ep};
      if (!mesh_errors(world->size(), config).empty()) continue;
      SCOPED_TRACE(::testing::Message() << "tp=" << tp << " ep=" << ep);
      expect_groups_match_coords(Mesh(world, config));
    }
}

TEST(MeshDist, InvalidLayoutFailsOnEveryRankWithTheSameMessage) {
  auto world = Runtime::get().world;
  const int tp = world->size() + 1;
  try {
    Mesh mesh(world, MeshConfig{tp, 1});
    FAIL() << "accepted tp > world size";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "parallel.tp=" + std::to_string(tp) + " does not divide world size " +
                                         std::to_string(world->size()) + " (mpirun -np " +
                                         std::to_string(world->size()) + ")");
  }
}

}  // namespace
}  // namespace distillery::parallel
