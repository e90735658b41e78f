// The `model:` section of a recipe: which Hugging Face model directory to train.
#pragma once

#include "common/config_fields.h"

namespace distillery {

struct ModelSection {
  std::string path;
  std::string dtype = "fp32";
  int64_t loss_chunk_tokens = 1024;

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("path", path, "Hugging Face model directory (config.json + *.safetensors); see `distillery init-model`",
      required());
    v("dtype", dtype, "parameter dtype; bf16 keeps fp32 master weights in the optimizer", one_of({"fp32", "bf16"}));
    v("loss_chunk_tokens", loss_chunk_tokens,
      "tokens per chunk of the fused lm_head + cross-entropy, bounding the fp32 logits held at once", ge(1));
  }
};

}  // namespace distillery
