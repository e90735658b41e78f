// `distillery tokenize --chat`: the conversation rendered with the tokenizer's own chat template
// (as transformers' apply_chat_template renders it) and its ids without added special tokens.
#include <gtest/gtest.h>

#include <sstream>

#include "data/text/chat_context.h"
#include "data/text/chat_template.h"
#include "cli/tokenize_command.h"
#include "tests/unit/data/text/text_test_util.h"
#include "common/error.h"

namespace distillery::text {
namespace {
using testing::family_dir;
using testing::family_tokenizer;

TEST(TokenizeChat, RendersWithTheModelTemplateAndEncodesWithoutSpecials) {
  const std::string dir = family_dir("qwen3");
  std::istringstream in(
      R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "add_generation_prompt": false})"
      "\n"
      R"({"messages": [{"role": "user", "content": "2+2?"}], "add_generation_prompt": true, "enable_thinking": false})"
      "\n");
  std::ostringstream out;
  ASSERT_EQ(run_tokenize_command({"--tokenizer", dir, "--chat"}, in, out), 0);
  std::istringstream lines(out.str());
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  const auto a = nlohmann::json::parse(first), b = nlohmann::json::parse(second);
  EXPECT_EQ(a["text"], "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>\n");
  const Tokenizer& tok = family_tokenizer("qwen3");
  EXPECT_EQ(a["ids"].get<std::vector<int32_t>>(), tok.encode(a["text"].get<std::string>(), false));
  EXPECT_EQ(a["ids"][0], *tok.token_to_id("<|im_start|>"));
  EXPECT_EQ(b["text"], "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

// The issue's case: tool-call arguments print in the order the input gave them (transformers'
// tojson keeps Python's dict order), not sorted.
TEST(TokenizeChat, KeepsTheInputKeyOrderInToolCalls) {
  std::istringstream in(
      R"({"messages": [{"role": "user", "content": "News?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "search", "arguments": {"query": "Bern news", "limit": 3}}}]}]})"
      "\n");
  std::ostringstream out;
  ASSERT_EQ(run_tokenize_command({"--tokenizer", family_dir("qwen3"), "--chat"}, in, out), 0);
  const auto row = nlohmann::ordered_json::parse(out.str());
  EXPECT_NE(row["text"].get<std::string>().find(
                R"(<tool_call>
{"name": "search", "arguments": {"query": "Bern news", "limit": 3}}
</tool_call><|im_end|>)"),
            std::string::npos)
      << row["text"];
}

TEST(TokenizeChat, BadLineIsNamed) {
  std::istringstream in("{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n{\"text\": \"x\"}\n");
  std::ostringstream out;
  try {
    run_tokenize_command({"--tokenizer", family_dir("qwen3"), "--chat"}, in, out);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "<stdin>:2: expected an object {\"messages\": [...]}");
  }
}

TEST(TokenBytes, ConcatenateToTheEncodedText) {
  const Tokenizer& tok = family_tokenizer("deepseek_v3");
  const std::string text = "<｜begin▁of▁sentence｜>Größe 🙂\n\tx  = 12345;";
  std::string joined;
  for (int32_t id : tok.encode(text, false)) joined += tok.token_bytes(id);
  EXPECT_EQ(joined, text);
}

}  // namespace
}  // namespace distillery::text
