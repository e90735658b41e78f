// The `data:` section of a recipe: where examples come from and how they become batches.
#pragma once

#include "trainer/config_fields.h"

namespace distillery {

struct DataConfig {
  std::string train;
  std::string eval;
  std::string format = "tokenized";
  int64_t max_seq_len = 512;
  std::string truncation = "right";
  bool shuffle = true;

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("train", train, "training JSONL file", required());
    v("eval", eval, "held-out JSONL file for eval_loss (optional)");
    v("format", format, "tokenized: {\"input_ids\": [...], \"labels\": [...]} per line (labels -100 are not trained on)",
      one_of({"tokenized"}));
    v("max_seq_len", max_seq_len, "tokens per packed row; documents never attend across their boundary", ge(2));
    v("truncation", truncation, "an example longer than max_seq_len: keep its first max_seq_len tokens, or drop it",
      one_of({"right", "drop"}));
    v("shuffle", shuffle, "shuffle examples each epoch (seeded by trainer.seed)");
  }
};

}  // namespace distillery
