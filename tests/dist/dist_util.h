// Helpers shared by the multi-rank tests.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

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

}  // namespace distillery::dist_testing
