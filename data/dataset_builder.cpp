#include "data/dataset_builder.h"

#include <filesystem>

#include "data/chat_masks.h"
#include "data/jsonl.h"
#include "common/error.h"
#include "common/ignore_index.h"

namespace distillery {
namespace {

std::string string_field(const nlohmann::ordered_json& rec, const std::string& key, const std::string& where) {
  DIST_CHECK(rec.contains(key), where, ": missing field '", key, "'");
  DIST_CHECK(rec[key].is_string(), where, ": field '", key, "' must be a string");
  return rec[key].get<std::string>();
}

void append(std::vector<int32_t>& ids, std::vector<int32_t>& labels, const std::vector<int32_t>& more, bool trained) {
  ids.insert(ids.end(), more.begin(), more.end());
  for (int32_t id : more) labels.push_back(trained ? id : static_cast<int32_t>(kIgnoreIndex));
}

ExampleStore tokenize_examples(const DataConfig& cfg, const std::string& path, const TextPipeline& text,
                               int64_t vocab_size) {
  const text::Tokenizer& tok = *text.tokenizer;
  const bool train_all = cfg.train_on == "all";
  const auto eos = tok.eos_id();
  DIST_CHECK(!cfg.add_eos || cfg.format == "messages" || eos, tok.directory(),
             ": the tokenizer has no eos_token; set data.add_eos=false");
  ChatOptions chat;
  chat.enable_thinking = cfg.enable_thinking;
  JsonlFile file(path);
  DIST_CHECK(file.size() > 0, path, ": no examples");
  ExampleStore store;
  std::vector<int32_t> ids, labels;
  for (size_t i = 0; i < file.size(); ++i) {
    const std::string where = file.where(i);
    const nlohmann::ordered_json rec = file.record(i);
    DIST_CHECK(rec.is_object(), where, ": expected a JSON object");
    ids.clear();
    labels.clear();
    if (cfg.format == "text") {
      append(ids, labels, tok.encode(string_field(rec, cfg.text_field, where), true), true);
      if (cfg.add_eos) append(ids, labels, {*eos}, true);
    } else if (cfg.format == "prompt_completion") {
      append(ids, labels, tok.encode(string_field(rec, cfg.prompt_field, where), true), train_all);
      append(ids, labels, tok.encode(string_field(rec, cfg.completion_field, where), false), true);
      if (cfg.add_eos) append(ids, labels, {*eos}, true);
    } else {
      DIST_CHECK(rec.contains(cfg.messages_field), where, ": missing field '", cfg.messages_field, "'");
      auto r = render_chat(*text.chat_template, tok, rec[cfg.messages_field], chat, where);
      tokenize_with_spans(tok, r.text, r.assistant, train_all, &ids, &labels);
    }
    DIST_CHECK(!ids.empty(), where, ": the example tokenizes to nothing");
    for (int32_t id : ids)
      DIST_CHECK(id < vocab_size, where, ": token id ", id, " from ", tok.directory(),
                 " is outside the model's vocabulary (vocab_size=", vocab_size, ")");
    store.add(ids, labels);
  }
  return store;
}

}  // namespace

TextPipeline load_text_pipeline(const DataConfig& cfg, const std::string& model_dir) {
  TextPipeline p;
  if (cfg.format == "tokenized") return p;
  const std::string dir = cfg.tokenizer.empty() ? model_dir : cfg.tokenizer;
  DIST_CHECK(std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.json"), dir,
             "/tokenizer.json: not found (data.format '", cfg.format, "' needs a tokenizer; set data.tokenizer)");
  p.tokenizer = std::make_shared<text::Tokenizer>(text::Tokenizer::load(dir));
  if (cfg.format == "messages") p.chat_template = std::make_shared<text::ChatTemplate>(text::load_chat_template(dir));
  return p;
}

ExampleStore build_examples(const DataConfig& cfg, const std::string& path, const TextPipeline& text,
                            int64_t vocab_size) {
  ExampleStore store = cfg.format == "tokenized" ? load_tokenized_jsonl(path, vocab_size)
                                                 : tokenize_examples(cfg, path, text, vocab_size);
  DIST_CHECK(store.without_targets() < store.size(), path, ": none of its ", store.size(),
             " examples has a token to train on (",
             cfg.format == "messages" ? "no assistant turn" : "every label after the first token is -100", ")");
  return store;
}

}  // namespace distillery
