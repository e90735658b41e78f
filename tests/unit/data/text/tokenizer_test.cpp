// Tokenizer behaviour beyond the corpus parity: special tokens, tokenizer_config.json,
// vocabulary lookups, BPE merge order and concurrency.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <unistd.h>

#include "tests/unit/data/text/text_test_util.h"
#include "common/error.h"

namespace distillery::text::testing {
namespace tokenizer_test {

namespace fs = std::filesystem;

std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A temporary model directory holding the given files; removed when it goes out of scope.
class TempModelDir {
 public:
  explicit TempModelDir(const std::string& tag) {
    path_ = fs::temp_directory_path() / ("distillery_tok_" + tag + "_" + std::to_string(::getpid()));
    fs::create_directories(path_);
  }
  ~TempModelDir() { fs::remove_all(path_); }
  void write(const std::string& name, const std::string& content) const { std::ofstream(path_ / name) << content; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

nlohmann::json mini_tokenizer_json() {
  std::ifstream in(source_path("tests/assets/mini_bpe/tokenizer.json"));
  return nlohmann::json::parse(in);
}

// A character-level BPE: a b c and the merges given, no pre-tokenizer.
nlohmann::json char_bpe(const nlohmann::json& merges) {
  return {{"version", "1.0"}, {"added_tokens", nlohmann::json::array()},
          {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abab", 5}}},
                     {"merges", merges}}}};
}

Tokenizer load_json(const TempModelDir& dir, const nlohmann::json& tokenizer_json) {
  dir.write("tokenizer.json", tokenizer_json.dump());
  return Tokenizer::load(dir.str());
}

// One test per real family, each loading one tokenizer.json (the expensive part of these tests).
TEST(Tokenizer, QwenSpecialTokensConfigAndLookups) {
  const Tokenizer& qwen = family_tokenizer("qwen3");
  // Added tokens are cut out before pre-tokenization, even inside a word.
  const int32_t im_start = *qwen.token_to_id("<|im_start|>");
  EXPECT_EQ(im_start, 151644);
  EXPECT_EQ(qwen.encode("abc<|im_start|>def"), concat({qwen.encode("abc"), {im_start}, qwen.encode("def")}));
  EXPECT_EQ(qwen.encode("Hello", true), qwen.encode("Hello"));  // Qwen adds nothing

  EXPECT_FALSE(qwen.bos_id().has_value());
  EXPECT_EQ(qwen.bos_token(), "");
  EXPECT_EQ(qwen.eos_token(), "<|im_end|>");
  EXPECT_EQ(qwen.eos_id(), 151645);
  EXPECT_EQ(qwen.pad_token(), "<|endoftext|>");
  EXPECT_EQ(qwen.pad_id(), 151643);
  EXPECT_EQ(qwen.model_max_length(), 131072);
  EXPECT_EQ(qwen.vocab_size(), 151669);
  EXPECT_NE(qwen.chat_template().find("<|im_start|>"), std::string::npos);
  EXPECT_EQ(qwen.chat_template_origin(), family_dir("qwen3") + "/tokenizer_config.json: chat_template");

  EXPECT_EQ(qwen.id_to_token(151644), "<|im_start|>");
  const auto hello = qwen.token_to_id("Hello");
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(qwen.id_to_token(*hello), "Hello");
  EXPECT_EQ(qwen.encode("Hello"), std::vector<int32_t>{*hello});
  EXPECT_EQ(qwen.token_to_id("\xC4\xA0world"), qwen.encode(" world")[0]);  // "Ġworld"
  EXPECT_FALSE(qwen.token_to_id("no such token").has_value());
  EXPECT_THROW(qwen.id_to_token(999999), UserError);
  EXPECT_THROW(qwen.id_to_token(-1), UserError);

  EXPECT_TRUE(qwen.is_special(151644));
  EXPECT_FALSE(qwen.is_special(*qwen.token_to_id("<tool_call>")));  // added, not special
  EXPECT_FALSE(qwen.is_special(*hello));
  const auto ids = qwen.encode("<|im_start|>user\nhi<tool_call><|im_end|>");
  EXPECT_EQ(qwen.decode(ids), "<|im_start|>user\nhi<tool_call><|im_end|>");
  EXPECT_EQ(qwen.decode(ids, true), "user\nhi<tool_call>");
  // Ids beyond the vocabulary (a model's padded embedding rows) decode to nothing, as in the reference.
  EXPECT_EQ(qwen.decode({*hello, 151700}), "Hello");
}

TEST(Tokenizer, LlamaAddsBeginOfTextWithSpecialTokens) {
  const Tokenizer& llama = family_tokenizer("llama3_1");
  ASSERT_EQ(llama.bos_id(), 128000);
  EXPECT_EQ(llama.encode("Hello", true), concat({{128000}, llama.encode("Hello")}));
  EXPECT_EQ(llama.encode("", true), std::vector<int32_t>{128000});
  EXPECT_EQ(llama.bos_token(), "<|begin_of_text|>");
  EXPECT_EQ(llama.eos_token(), "<|eot_id|>");
  EXPECT_EQ(llama.eos_id(), 128009);
  EXPECT_FALSE(llama.pad_id().has_value());
  EXPECT_FALSE(llama.model_max_length().has_value());  // transformers' 1e30 "no limit"
  EXPECT_EQ(llama.vocab_size(), 128256);
  // Qwen's marker is plain text to Llama: the pre-tokenizer splits it into several tokens.
  EXPECT_GT(llama.encode("<|im_start|>").size(), 1u);
}

TEST(Tokenizer, DeepSeekTakesBosFromTokenizerConfig) {
  // DeepSeek-V3's tokenizer.json has no BOS template; tokenizer_config.json's add_bos_token asks for it.
  const Tokenizer& deepseek = family_tokenizer("deepseek_v3");
  EXPECT_EQ(deepseek.encode("Hello", true), concat({{0}, deepseek.encode("Hello")}));
  EXPECT_EQ(deepseek.bos_token(), "<｜begin▁of▁sentence｜>");  // an AddedToken dict in the config
  EXPECT_EQ(deepseek.bos_id(), 0);
  EXPECT_EQ(deepseek.eos_id(), 1);
  EXPECT_EQ(deepseek.pad_id(), 1);
  EXPECT_EQ(deepseek.vocab_size(), 128815);
  EXPECT_NE(deepseek.chat_template().find("<｜Assistant｜>"), std::string::npos);
  EXPECT_EQ(deepseek.encode("x<｜User｜>y"), concat({deepseek.encode("x"), {*deepseek.token_to_id("<｜User｜>")}, deepseek.encode("y")}));
}

TEST(Tokenizer, RejectsTextThatIsNotUtf8) {
  TempModelDir dir("utf8");
  const Tokenizer tok = load_json(dir, mini_tokenizer_json());
  try {
    tok.encode(std::string("abc\xFF" "d"));
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_STREQ(e.what(), "cannot tokenize text that is not valid UTF-8 (byte 3 of 5)");
  }
}

TEST(Tokenizer, ConcurrentEncodeGivesTheSameIds) {
  TempModelDir dir("threads");
  const Tokenizer tok = load_json(dir, mini_tokenizer_json());
  const auto corpus = read_jsonl(source_path("tests/assets/tokenizer_corpus.jsonl"));
  std::vector<std::vector<int32_t>> expected;
  for (const auto& row : corpus) expected.push_back(tok.encode(row["text"].get<std::string>()));
  std::vector<size_t> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round)
        for (size_t i = (t * 37) % corpus.size(), n = 0; n < corpus.size(); ++n, i = (i + 1) % corpus.size())
          if (tok.encode(corpus[i]["text"].get<std::string>()) != expected[i]) ++mismatches[t];
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<size_t>(4, 0));
}

TEST(Tokenizer, ChatTemplateJinjaFileTakesPrecedence) {
  TempModelDir dir("jinja");
  dir.write("tokenizer_config.json", R"({"chat_template": "from config"})");
  dir.write("chat_template.jinja", "from jinja file");
  const Tokenizer tok = load_json(dir, mini_tokenizer_json());
  EXPECT_EQ(tok.chat_template(), "from jinja file");
  EXPECT_EQ(tok.chat_template_origin(), dir.str() + "/chat_template.jinja");
}

TEST(Tokenizer, NamedChatTemplatesUseTheDefaultOne) {
  TempModelDir dir("named_templates");
  dir.write("tokenizer_config.json",
            R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})");
  const Tokenizer tok = load_json(dir, mini_tokenizer_json());
  EXPECT_EQ(tok.chat_template(), "D");
  EXPECT_EQ(tok.chat_template_origin(), dir.str() + "/tokenizer_config.json: chat_template[1].template");
}

TEST(Tokenizer, ConfigSpecialTokenFromTheVocabularyBecomesAnAddedToken) {
  // As transformers does: a special token named in tokenizer_config.json that tokenizer.json
  // only has as an ordinary vocabulary entry is then matched whole and marked special.
  TempModelDir dir("config_special");
  const nlohmann::json json = mini_tokenizer_json();
  const Tokenizer plain = load_json(dir, json);
  const int32_t the = *plain.token_to_id("the");
  ASSERT_NE(plain.encode("bathe").back(), the);
  dir.write("tokenizer_config.json", R"({"pad_token": "the"})");
  const Tokenizer tok = Tokenizer::load(dir.str());
  EXPECT_EQ(tok.pad_id(), the);
  EXPECT_TRUE(tok.is_special(the));
  EXPECT_EQ(tok.encode("bathe"), concat({tok.encode("ba"), {the}}));
}

TEST(Tokenizer, ConfigAddBosTokenReplacesTheTemplateEvenWhenNull) {
  // As transformers' update_post_processor: setting add_bos_token/add_eos_token (even to null)
  // replaces tokenizer.json's post-processor with [bos] $A [eos].
  TempModelDir dir("add_bos");
  nlohmann::json json = mini_tokenizer_json();
  json["post_processor"] = {{"type", "TemplateProcessing"},
                            {"single", {{{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}},
                                        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                            {"pair", nlohmann::json::array()},
                            {"special_tokens", {{"<|endoftext|>", {{"id", "<|endoftext|>"}, {"ids", {3256}}, {"tokens", {"<|endoftext|>"}}}}}}};
  const Tokenizer from_json = load_json(dir, json);
  EXPECT_EQ(from_json.encode("hi", true), concat({{3256}, from_json.encode("hi")}));
  dir.write("tokenizer_config.json", R"({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_eos_token": true})");
  const Tokenizer eos_only = Tokenizer::load(dir.str());
  EXPECT_EQ(eos_only.encode("hi", true), concat({eos_only.encode("hi"), {3258}}));
  dir.write("tokenizer_config.json", R"({"bos_token": "<|im_start|>", "add_bos_token": null})");
  const Tokenizer nothing = Tokenizer::load(dir.str());
  EXPECT_EQ(nothing.encode("hi", true), nothing.encode("hi"));
}

TEST(BpeModel, MergesByRankNotByPosition) {
  TempModelDir dir("ranks");
  // "abc": with "b c" ranked first the pair on the right merges first.
  EXPECT_EQ(load_json(dir, char_bpe({"b c", "a b"})).encode("abc"), (std::vector<int32_t>{0, 4}));
  EXPECT_EQ(load_json(dir, char_bpe({"a b", "b c"})).encode("abc"), (std::vector<int32_t>{3, 2}));
}

TEST(BpeModel, LegacyAndPairMergesAgree) {
  TempModelDir dir("merge_forms");
  const auto legacy = load_json(dir, char_bpe({"a b", "ab ab"})).encode("ababcab");
  const nlohmann::json pair_merges = nlohmann::json::array({nlohmann::json::array({"a", "b"}), nlohmann::json::array({"ab", "ab"})});
  const auto pairs = load_json(dir, char_bpe(pair_merges)).encode("ababcab");
  EXPECT_EQ(legacy, (std::vector<int32_t>{5, 2, 3}));
  EXPECT_EQ(pairs, legacy);
}

TEST(BpeModel, LongWordsMergeLikeShortOnes) {
  // Words past 48 symbols take the priority-queue path; the result must not change.
  TempModelDir dir("long_words");
  const Tokenizer tok = load_json(dir, char_bpe({"a b", "ab ab", "b c"}));
  std::string word;
  std::vector<int32_t> expected;
  for (int i = 0; i < 60; ++i) {
    word += i % 3 == 2 ? "abc" : "abab";
    if (i % 3 == 2) expected.insert(expected.end(), {3, 2});
    else expected.push_back(5);
  }
  EXPECT_EQ(tok.encode(word), expected);
  EXPECT_EQ(tok.encode(word.substr(0, 11)), (std::vector<int32_t>{5, 5, 3, 2}));
}

}  // namespace tokenizer_test
}  // namespace distillery::text::testing
