// `distillery tokenize`: JSONL in, {"ids": [...]} out, errors naming the input line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "cli/tokenize_command.h"
#include "tests/unit/data/text/text_test_util.h"
#include "common/error.h"

namespace distillery::text::testing {
namespace tokenize_command_test {

std::string run(const std::vector<std::string>& args, const std::string& input) {
  std::istringstream in(input);
  std::ostringstream out;
  EXPECT_EQ(run_tokenize_command(args, in, out), 0);
  return out.str();
}

std::string error_of(const std::vector<std::string>& args, const std::string& input) {
  std::istringstream in(input);
  std::ostringstream out;
  try {
    run_tokenize_command(args, in, out);
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string ids_line(const std::vector<int32_t>& ids) {
  std::string s = "{\"ids\": [";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]}\n";
}

// The small test tokenizer, with a tokenizer_config.json that asks for a BOS token.
class TokenizeCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("distillery_tokenize_cmd_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    std::filesystem::copy_file(source_path("tests/assets/mini_bpe/tokenizer.json"), dir_ / "tokenizer.json");
    std::ofstream(dir_ / "tokenizer_config.json") << R"({"bos_token": "<|im_start|>", "add_bos_token": true})";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir() const { return dir_.string(); }

  std::filesystem::path dir_;
};

TEST_F(TokenizeCommand, WritesOneIdsLinePerTextLine) {
  const Tokenizer tok = Tokenizer::load(dir());
  const std::string input = "{\"text\": \"Hello world\"}\n{\"text\": \"\"}\n{\"text\": \"<|im_end|>\\n\\tx\", \"other\": 1}\n";
  EXPECT_EQ(run({"--tokenizer", dir()}, input),
            ids_line(tok.encode("Hello world")) + ids_line({}) + ids_line(tok.encode("<|im_end|>\n\tx")));
  EXPECT_EQ(run({"--tokenizer=" + dir(), "--add-special-tokens"}, "{\"text\": \"Hello world\"}"),
            ids_line(tok.encode("Hello world", true)));
  EXPECT_EQ(tok.encode("Hello world", true).front(), *tok.token_to_id("<|im_start|>"));
  EXPECT_EQ(run({"--tokenizer", dir()}, ""), "");
}

TEST_F(TokenizeCommand, BadLinesNameTheLine) {
  const std::string good = "{\"text\": \"fine\"}\n";
  EXPECT_EQ(error_of({"--tokenizer", dir()}, good + "{\"text\": \"unterminated}\n").rfind("<stdin>:2: invalid JSON at column ", 0), 0u);
  EXPECT_EQ(error_of({"--tokenizer", dir()}, good + good + "{\"messages\": []}\n"), "<stdin>:3: missing \"text\"");
  EXPECT_EQ(error_of({"--tokenizer", dir()}, "{\"text\": 5}\n"), "<stdin>:1: \"text\" must be a string");
  EXPECT_EQ(error_of({"--tokenizer", dir()}, "[1, 2]\n"), "<stdin>:1: expected an object {\"text\": ...}");
  EXPECT_EQ(error_of({"--tokenizer", dir()}, good + "\n"), "<stdin>:2: invalid JSON at column 1: syntax error while parsing value - unexpected end of input; expected '[', '{', or a literal");
}

TEST_F(TokenizeCommand, BadArgumentsSayHowToUseIt) {
  EXPECT_EQ(error_of({}, ""), std::string("tokenize: --tokenizer DIR is required (usage: ") + tokenize_command_usage() + ")");
  EXPECT_EQ(error_of({"--tokenizer"}, ""), std::string("tokenize: --tokenizer needs a directory (usage: ") + tokenize_command_usage() + ")");
  EXPECT_EQ(error_of({"--tokenizer", "x", "--bogus"}, ""),
            std::string("tokenize: unknown argument '--bogus' (usage: ") + tokenize_command_usage() + ")");
  EXPECT_EQ(error_of({"--tokenizer", "/no/such/dir"}, ""), "/no/such/dir: no tokenizer.json (distillery reads Hugging Face fast tokenizers)");
}

}  // namespace tokenize_command_test
}  // namespace distillery::text::testing
