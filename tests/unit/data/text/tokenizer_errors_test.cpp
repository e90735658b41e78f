// Bad tokenizer files end in one UserError naming the file and the JSON path of the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "tests/unit/data/text/text_test_util.h"
#include "common/error.h"

namespace distillery::text::testing {
namespace tokenizer_errors_test {

namespace fs = std::filesystem;

class TokenizerErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("distillery_tok_errors_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ifstream in(source_path("tests/assets/mini_bpe/tokenizer.json"));
    base_ = nlohmann::json::parse(in);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& content) { std::ofstream(dir_ / name) << content; }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // The message of the UserError that loading the directory raises.
  std::string load_error() {
    try {
      Tokenizer::load(dir_.string());
    } catch (const UserError& e) {
      return e.what();
    }
    return "(no error)";
  }
  std::string load_error(const nlohmann::json& patch) {
    nlohmann::json json = base_;
    json.merge_patch(patch);
    write("tokenizer.json", json.dump());
    return load_error();
  }

  fs::path dir_;
  nlohmann::json base_;
};

TEST_F(TokenizerErrors, UnsupportedComponentsNameTheirJsonPath) {
  const nlohmann::json metaspace = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "always"}};
  EXPECT_EQ(load_error({{"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}}, metaspace}}}}}),
            file("tokenizer.json") + ": pre_tokenizer.pretokenizers[1].type 'Metaspace' is not supported");
  EXPECT_EQ(load_error({{"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Lowercase"}}}}}}}),
            file("tokenizer.json") + ": normalizer.normalizers[0].type 'Lowercase' is not supported");
  EXPECT_EQ(load_error({{"decoder", {{"type", "WordPiece"}}}}), file("tokenizer.json") + ": decoder.type 'WordPiece' is not supported");
  EXPECT_EQ(load_error({{"post_processor", {{"type", "Unknown"}}}}),
            file("tokenizer.json") + ": post_processor.type 'Unknown' is not supported");
  EXPECT_EQ(load_error({{"model", {{"type", "Unigram"}}}}),
            file("tokenizer.json") + ": model.type 'Unigram' is not supported (only BPE models are)");
  EXPECT_EQ(load_error({{"model", {{"dropout", 0.1}}}}),
            file("tokenizer.json") + ": model.dropout is set: BPE dropout (random merges) is not supported");
}

TEST_F(TokenizerErrors, RegexesThatCannotBeMatchedExactlyAreRejected) {
  const std::string msg = load_error({{"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "\\R+"}}}, {"behavior", "Isolated"}, {"invert", false}}}});
  EXPECT_EQ(msg.rfind(file("tokenizer.json") + ": pre_tokenizer.pattern.Regex '\\R+' uses \\R, which distillery does not support", 0), 0u) << msg;
  EXPECT_EQ(load_error({{"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}}}}),
            file("tokenizer.json") + ": pre_tokenizer.behavior 'Sideways' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

TEST_F(TokenizerErrors, MalformedFilesNameTheFileAndPlace) {
  EXPECT_EQ(load_error(), dir_.string() + ": no tokenizer.json (distillery reads Hugging Face fast tokenizers)");
  write("tokenizer.json", "{\"version\": \"1.0\",\n \"model\": {]}");
  const std::string syntax = load_error();
  EXPECT_EQ(syntax.rfind(file("tokenizer.json") + ": invalid JSON: ", 0), 0u) << syntax;
  EXPECT_NE(syntax.find("line 2"), std::string::npos) << syntax;

  EXPECT_EQ(load_error({{"model", {{"merges", {"\xC4\xA0 t", "qqqq zzzz"}}}}}),
            file("tokenizer.json") + ": model.merges[1] 'qqqq' is not in the vocabulary");
  EXPECT_EQ(load_error({{"model", {{"merges", {"a b c"}}}}}),
            file("tokenizer.json") + ": model.merges[0] 'a b c' must be two tokens separated by one space");
  EXPECT_EQ(load_error({{"model", {{"vocab", {{"!", -3}}}}}}),
            file("tokenizer.json") + ": model.vocab[\"!\"] must be a non-negative token id");
  EXPECT_EQ(load_error({{"model", {{"vocab", nullptr}}}}), file("tokenizer.json") + ": model.vocab is missing");
  EXPECT_EQ(load_error({{"version", "2.0"}}), file("tokenizer.json") + ": version '2.0' is not a tokenizer.json version distillery reads (1.0)");
}

TEST_F(TokenizerErrors, AddedTokenIdsMustBeWhatTheReferenceAssigns) {
  nlohmann::json json = base_;
  json["added_tokens"][1]["id"] = 5000;  // the second special token follows the first: 3257
  write("tokenizer.json", json.dump());
  EXPECT_EQ(load_error(), file("tokenizer.json") + ": added_tokens[1].id is 5000 but Hugging Face tokenizers assigns "
                          "'<|im_start|>' id 3257 (a token in the model's vocabulary keeps its id; the others follow the "
                          "vocabulary in order)");
}

TEST_F(TokenizerErrors, TokenizerConfigProblemsNameTheConfigKey) {
  write("tokenizer.json", base_.dump());
  write("tokenizer_config.json", R"({"eos_token": "<|no such token|>"})");
  EXPECT_EQ(load_error(), file("tokenizer_config.json") +
                              ": eos_token '<|no such token|>' is neither an added token nor in the vocabulary of tokenizer.json");
  write("tokenizer_config.json", R"({"bos_token": 7})");
  EXPECT_EQ(load_error(), file("tokenizer_config.json") + ": bos_token must be a string, an AddedToken object or null");
  write("tokenizer_config.json", R"({"add_bos_token": "yes"})");
  EXPECT_EQ(load_error(), file("tokenizer_config.json") + ": add_bos_token must be true or false, not a string");
  write("tokenizer_config.json", R"({"additional_special_tokens": ["<|im_end|>", {"content": "<|oops|>"}]})");
  EXPECT_EQ(load_error(), file("tokenizer_config.json") +
                              ": additional_special_tokens[1] '<|oops|>' is neither an added token nor in the vocabulary of tokenizer.json");
}

}  // namespace tokenizer_errors_test
}  // namespace distillery::text::testing
