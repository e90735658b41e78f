#include "parallel/mesh.h"

#include "common/error.h"

namespace distillery::parallel {

std::vector<std::string> mesh_errors(int world_size, const MeshConfig& config) {
  std::vector<std::string> errors;
  if (config.tp < 1) errors.push_back(detail::concat("parallel.tp=", config.tp, " must be at least 1"));
  if (config.ep < 1) errors.push_back(detail::concat("parallel.ep=", config.ep, " must be at least 1"));
  if (config.tp >= 1 && world_size % config.tp != 0)
    errors.push_back(detail::concat("parallel.tp=", config.tp, " does not divide world size ", world_size,
                                    " (mpirun -np ", world_size, ")"));
  if (config.tp >= 1 && config.ep >= 1 && world_size % config.tp == 0) {
    const int dp = world_size / config.tp;
    if (dp % config.ep != 0)
      errors.push_back(detail::concat("parallel.ep=", config.ep, " does not divide dp=", dp, " (world size ",
                                      world_size, " / parallel.tp=", config.tp, ")"));
  }
  return errors;
}

MeshCoords mesh_coords(int world_size, int world_rank, const MeshConfig& config) {
  DIST_ASSERT(world_size >= 1 && world_rank >= 0 && world_rank < world_size, "rank ", world_rank,
              " of a world of ", world_size);
  const std::vector<std::string> errors = mesh_errors(world_size, config);
  if (!errors.empty()) {
    std::string joined;
    for (const auto& e : errors) joined += (joined.empty() ? "" : "; ") + e;
    throw UserError(joined);
  }
  MeshCoords c;
  c.world_size = world_size;
  c.world_rank = world_rank;
  c.tp_size = config.tp;
  c.dp_size = world_size / config.tp;
  c.ep_size = config.ep;
  c.expert_dp_size = c.dp_size / config.ep;
  c.tp_rank = world_rank % c.tp_size;
  c.dp_rank = world_rank / c.tp_size;
  c.ep_rank = c.dp_rank % c.ep_size;
  c.expert_dp_rank = c.dp_rank / c.ep_size;
  return c;
}

std::vector<int> MeshCoords::group_ranks(MeshGroup group) const {
  std::vector<int> ranks;
  switch (group) {
    case MeshGroup::kTp:
      for (int t = 0; t < tp_size; ++t) ranks.push_back(dp_rank * tp_size + t);
      break;
    case MeshGroup::kDp:
      for (int d = 0; d < dp_size; ++d) ranks.push_back(d * tp_size + tp_rank);
      break;
    case MeshGroup::kEp:
      for (int e = 0; e < ep_size; ++e) ranks.push_back((expert_dp_rank * ep_size + e) * tp_size + tp_rank);
      break;
    case MeshGroup::kExpertDp:
      for (int j = 0; j < expert_dp_size; ++j) ranks.push_back((j * ep_size + ep_rank) * tp_size + tp_rank);
      break;
  }
  return ranks;
}

int MeshCoords::color(MeshGroup group) const {
  switch (group) {
    case MeshGroup::kTp: return dp_rank;
    case MeshGroup::kDp: return tp_rank;
    case MeshGroup::kEp: return tp_rank * expert_dp_size + expert_dp_rank;
    case MeshGroup::kExpertDp: return tp_rank * ep_size + ep_rank;
  }
  DIST_ASSERT(false, "unknown MeshGroup");
  return 0;
}

int MeshCoords::key(MeshGroup group) const {
  switch (group) {
    case MeshGroup::kTp: return tp_rank;
    case MeshGroup::kDp: return dp_rank;
    case MeshGroup::kEp: return ep_rank;
    case MeshGroup::kExpertDp: return expert_dp_rank;
  }
  DIST_ASSERT(false, "unknown MeshGroup");
  return 0;
}

Mesh::Mesh(std::shared_ptr<Communicator> world, const MeshConfig& config) : world_(std::move(world)) {
  DIST_ASSERT(world_ != nullptr, "Mesh over a null world communicator");
  coords_ = mesh_coords(world_->size(), world_->rank(), config);
  // Every rank takes the same branches (they depend on sizes only), so the splits, which are
  // collective over the parent, line up across ranks.
  auto make = [&](MeshGroup g, int size, const std::shared_ptr<Communicator>& same_as,
                  int same_size) -> std::shared_ptr<Communicator> {
    if (size == 1) return std::make_shared<LocalCommunicator>();
    if (size == same_size) return same_as;  // the group is all of `same_as`, in the same order
    return world_->split(coords_.color(g), coords_.key(g));
  };
  tp_ = make(MeshGroup::kTp, coords_.tp_size, world_, coords_.world_size);
  dp_ = make(MeshGroup::kDp, coords_.dp_size, world_, coords_.world_size);
  ep_ = make(MeshGroup::kEp, coords_.ep_size, dp_, coords_.dp_size);
  expert_dp_ = make(MeshGroup::kExpertDp, coords_.expert_dp_size, dp_, coords_.dp_size);
}

const std::shared_ptr<Communicator>& Mesh::group(MeshGroup g) const {
  switch (g) {
    case MeshGroup::kTp: return tp_;
    case MeshGroup::kDp: return dp_;
    case MeshGroup::kEp: return ep_;
    case MeshGroup::kExpertDp: return expert_dp_;
  }
  DIST_ASSERT(false, "unknown MeshGroup");
  return world_;
}

std::string Mesh::describe() const {
  const MeshCoords& c = coords_;
  return detail::concat("world ", c.world_size, " = dp ", c.dp_size, " x tp ", c.tp_size, ", ep ", c.ep_size,
                        " (expert-dp ", c.expert_dp_size, "); this rank: dp ", c.dp_rank, ", tp ", c.tp_rank,
                        ", ep ", c.ep_rank);
}

}  // namespace distillery::parallel
