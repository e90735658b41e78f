// The device mesh: world ranks arranged as dp x tp (tp innermost, so a tp group is consecutive
// ranks and sits inside one node), with expert parallelism carved inside dp.
//
//   world rank r:  tp_rank = r % tp,  dp_rank = r / tp                         (dp = world / tp)
//   ep group:      ep consecutive dp ranks with the same tp rank;  ep_rank = dp_rank % ep
//   expert-dp:     the dp/ep ranks holding the same expert shard (same ep rank and tp rank);
//                  expert_dp_rank = dp_rank / ep
//
// Example, world 8, tp=2, ep=2 (dp=4):   rank:     0 1 2 3 4 5 6 7
//                                         tp_rank:  0 1 0 1 0 1 0 1
//                                         dp_rank:  0 0 1 1 2 2 3 3
//                                         ep_rank:  0 0 1 1 0 0 1 1
//   tp groups {0,1} {2,3} {4,5} {6,7};  dp groups {0,2,4,6} {1,3,5,7};
//   ep groups {0,2} {4,6} {1,3} {5,7};  expert-dp groups {0,4} {2,6} {1,5} {3,7}.
//
// What is reduced where: dense-weight gradients over dp; expert-weight gradients over expert-dp
// (each expert shard lives on one ep rank of every ep group); tp collectives inside the layers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace distillery::parallel {

struct MeshConfig {
  int tp = 1;  // tensor-parallel degree: ranks sharing each layer's weights; divides the world size
  int ep = 1;  // expert-parallel degree: ranks sharing the experts of a MoE layer; divides dp
};

enum class MeshGroup { kDp, kTp, kEp, kExpertDp };

// One rank's coordinates, from rank arithmetic alone (no communication).
struct MeshCoords {
  int world_size = 1, world_rank = 0;
  int dp_size = 1, dp_rank = 0;
  int tp_size = 1, tp_rank = 0;
  int ep_size = 1, ep_rank = 0;
  int expert_dp_size = 1, expert_dp_rank = 0;

  // The world ranks of this rank's `group`, in group-rank order.
  std::vector<int> group_ranks(MeshGroup group) const;
  // Split arguments that form `group`: ranks with equal color share a group, ordered by key.
  int color(MeshGroup group) const;
  int key(MeshGroup group) const;
};

// Every problem with `config` on `world_size` ranks, one line each (none when valid), e.g.
// "parallel.tp=4 does not divide world size 6 (mpirun -np 6)".
std::vector<std::string> mesh_errors(int world_size, const MeshConfig& config);

// Coordinates of `world_rank`; UserError with every problem of mesh_errors() joined by "; ".
MeshCoords mesh_coords(int world_size, int world_rank, const MeshConfig& config);

class Mesh {
 public:
  // Collective over `world`: splits it into the four groups (a size-1 group is a
  // LocalCommunicator, a group equal to a parent reuses it). UserError on an invalid config.
  Mesh(std::shared_ptr<Communicator> world, const MeshConfig& config);

  const MeshCoords& coords() const { return coords_; }
  int world_size() const { return coords_.world_size; }
  int world_rank() const { return coords_.world_rank; }
  int dp_size() const { return coords_.dp_size; }
  int dp_rank() const { return coords_.dp_rank; }
  int tp_size() const { return coords_.tp_size; }
  int tp_rank() const { return coords_.tp_rank; }
  int ep_size() const { return coords_.ep_size; }
  int ep_rank() const { return coords_.ep_rank; }
  int expert_dp_size() const { return coords_.expert_dp_size; }
  int expert_dp_rank() const { return coords_.expert_dp_rank; }

  const std::shared_ptr<Communicator>& world() const { return world_; }
  const std::shared_ptr<Communicator>& dp() const { return dp_; }
  const std::shared_ptr<Communicator>& tp() const { return tp_; }
  const std::shared_ptr<Communicator>& ep() const { return ep_; }
  const std::shared_ptr<Communicator>& expert_dp() const { return expert_dp_; }
  const std::shared_ptr<Communicator>& group(MeshGroup g) const;

  // "world 8 = dp 4 x tp 2, ep 2 (expert-dp 2); this rank: dp 1, tp 0, ep 1" for run logs.
  std::string describe() const;

 private:
  MeshCoords coords_;
  std::shared_ptr<Communicator> world_, dp_, tp_, ep_, expert_dp_;
};

}  // namespace distillery::parallel
