// Helpers shared by the multi-rank tests.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parallel/mesh.h"
#include "parallel/runtime.h"
#include "trainer/recipe.h"

namespace distillery::dist_testing {

// A directory every rank sees (under the build dir, per world size), made fresh by rank 0, which
// then calls `fill(dir)`; every rank waits for it.
inline std::string shared_test_dir(const std::string& name, const std::function<void(const std::string&)>& fill) {
  auto& rt = parallel::Runtime::get();
  const std::string dir =
      std::string(DISTILLERY_BINARY_DIR) + "/dist-tmp/np" + std::to_string(rt.world_size) + "/" + name;
  if (rt.world_rank == 0) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    if (fill) fill(dir);
  }
  rt.world->barrier();
  return dir;
}

// `cfg` training DoRA adapters (r 4) on every linear layer, with a learning rate for adapters.
inline RecipeConfig with_dora_adapters(RecipeConfig cfg) {
  cfg.lora.r = 4;
  cfg.lora.use_dora = true;
  cfg.lora.target_modules = {"all-linear"};
  cfg.optim.lr = 1e-2;
  return cfg;
}

// The tp groups the vocabulary-parallel tests run on: the world, and with 4 ranks also the tp pairs of
// a dp=2 x tp=2 mesh (made once, on first use; every rank reaches it in the same test, so the
// collective split matches).
inline const std::vector<std::shared_ptr<parallel::Communicator>>& tp_groups() {
  static const std::vector<std::shared_ptr<parallel::Communicator>> groups = [] {
    std::vector<std::shared_ptr<parallel::Communicator>> g{parallel::Runtime::get().world};
    if (parallel::Runtime::get().world->size() == 4)
      g.push_back(parallel::Mesh(parallel::Runtime::get().world, parallel::MeshConfig{2, 1}).tp());
    return g;
  }();
  return groups;
}

inline std::string where(const parallel::Communicator& tp) {
  return "tp rank " + std::to_string(tp.rank()) + "/" + std::to_string(tp.size());
}

// Largest absolute difference, relative to the reference's magnitude where that exceeds 1.
inline double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  const auto a = got.to(torch::kDouble), b = want.to(torch::kDouble);
  if (b.numel() == 0) return 0;
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a - b).abs().max().item<double>() / scale;
}

// `t` holds the same bits on every rank of `c`.
inline bool same_on_every_rank(const torch::Tensor& t, parallel::Communicator& c) {
  auto all = c.allgather(t.detach().reshape({1, -1}).contiguous());
  for (int64_t r = 1; r < all.size(0); ++r)
    if (!torch::equal(all[r], all[0])) return false;
  return true;
}

}  // namespace distillery::dist_testing
