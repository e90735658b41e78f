// Precompiled for every LibTorch translation unit: parsing torch/torch.h costs ~80 s per unit
// at -O2 on this project's CI machine, and ~1 s once precompiled.
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
