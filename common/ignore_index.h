// The label of a position that carries no loss: Hugging Face's (and PyTorch's CrossEntropyLoss's)
// ignore_index, so label arrays read and written by distillery mean what they mean in transformers.
#pragma once

#include <cstdint>

namespace distillery {

constexpr int64_t kIgnoreIndex = -100;

}  // namespace distillery
