// The `data:` section of a recipe: where examples come from and how they become batches.
#pragma once

#include "common/config_fields.h"

namespace distillery {

struct DataConfig {
  std::string train;
  std::string eval;
  std::string format = "tokenized";
  std::string tokenizer;
  std::string text_field = "text";
  std::string prompt_field = "prompt";
  std::string completion_field = "completion";
  std::string messages_field = "messages";
  std::string train_on = "completion";
  std::string enable_thinking = "default";
  bool add_eos = true;
  int64_t max_seq_len = 512;
  std::string truncation = "right";
  bool packing = true;
  bool shuffle = true;

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("train", train, "training JSONL file", required());
    v("eval", eval, "held-out JSONL file for eval_loss (optional)");
    v("format", format,
      "tokenized: {input_ids, labels}; text: {text}; prompt_completion: {prompt, completion}; "
      "messages: {messages: [{role, content, reasoning_content?}]} rendered with the model's chat template",
      one_of({"tokenized", "text", "prompt_completion", "messages"}));
    v("tokenizer", tokenizer, "directory with tokenizer.json + tokenizer_config.json (default: model.path)");
    v("text_field", text_field, "column holding the text (format text)");
    v("prompt_field", prompt_field, "column holding the prompt (format prompt_completion)");
    v("completion_field", completion_field, "column holding the completion (format prompt_completion)");
    v("messages_field", messages_field, "column holding the conversation (format messages)");
    v("train_on", train_on,
      "completion: only completions / assistant turns (with their end-of-turn token) carry loss; all: every token",
      one_of({"completion", "all"}));
    v("enable_thinking", enable_thinking,
      "chat templates with a thinking switch (Qwen3): default leaves it to the template, true/false sets "
      "enable_thinking", one_of({"default", "true", "false"}));
    v("add_eos", add_eos, "append the tokenizer's eos token to text and completions (formats text, prompt_completion)");
    v("max_seq_len", max_seq_len, "tokens per packed row; documents never attend across their boundary", ge(2));
    v("truncation", truncation, "an example longer than max_seq_len: keep its first max_seq_len tokens, or drop it",
      one_of({"right", "drop"}));
    v("packing", packing, "pack several examples per row (false: one example per row, padded)");
    v("shuffle", shuffle, "shuffle examples each epoch (seeded by trainer.seed)");
  }
};

}  // namespace distillery
