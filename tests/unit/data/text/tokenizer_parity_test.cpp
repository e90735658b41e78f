// Differential test against Hugging Face tokenizers: tests/assets/tokenizer_corpus.jsonl encoded
// by the reference (tests/parity/tokenizer_reference.js) for each family, compared id for id.
#include <gtest/gtest.h>

#include "data/text/unicode_normalization.h"
#include "tests/unit/data/text/text_test_util.h"

namespace distillery::text::testing {
namespace tokenizer_parity_test {

class FamilyParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    corpus_ = read_jsonl(source_path("tests/assets/tokenizer_corpus.jsonl"));
    expected_ = read_jsonl(source_path("tests/assets/tokenizer_expected_" + GetParam() + ".jsonl"));
    ASSERT_EQ(corpus_.size(), expected_.size()) << "regenerate the expectations (docs/tokenizers.md)";
    ASSERT_GE(corpus_.size(), 300u);
  }
  std::string text(size_t i) const { return corpus_[i]["text"].get<std::string>(); }

  std::vector<nlohmann::json> corpus_, expected_;
};

// Compares one field of every line; reports the first few differing lines in full.
template <typename F>
void expect_all_lines(const std::vector<nlohmann::json>& expected, const char* what, F&& actual_of_line) {
  size_t mismatches = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const nlohmann::json actual = actual_of_line(i);
    if (actual == expected[i][what]) continue;
    if (++mismatches <= 5) {
      ADD_FAILURE() << "corpus line " << i + 1 << ": " << what << "\n  expected " << expected[i][what].dump()
                    << "\n  actual   " << actual.dump();
    }
  }
  EXPECT_EQ(mismatches, 0u) << what << " differs on " << mismatches << " of " << expected.size() << " lines";
}

// One test per family (ctest runs each test in its own process, and loading a family's
// tokenizer.json is the expensive part): ids without and with special tokens, decode, decode
// skipping special tokens, and the round trip.
TEST_P(FamilyParity, MatchesHuggingFaceOnEveryCorpusLine) {
  const Tokenizer& tok = family_tokenizer(GetParam());
  expect_all_lines(expected_, "ids", [&](size_t i) { return nlohmann::json(tok.encode(text(i))); });
  expect_all_lines(expected_, "ids_with_special_tokens", [&](size_t i) { return nlohmann::json(tok.encode(text(i), true)); });
  expect_all_lines(expected_, "decoded", [&](size_t i) {
    return nlohmann::json(tok.decode(expected_[i]["ids"].get<std::vector<int32_t>>()));
  });
  expect_all_lines(expected_, "decoded_skip_special", [&](size_t i) {
    return nlohmann::json(tok.decode(expected_[i]["ids_with_special_tokens"].get<std::vector<int32_t>>(), true));
  });

  // Byte-level BPE loses nothing; only Qwen's NFC normalizer rewrites text (as the reference
  // does), so there the round trip gives the NFC form.
  const bool nfc = GetParam() == "qwen3";
  size_t failures = 0, normalized_lines = 0;
  for (size_t i = 0; i < corpus_.size(); ++i) {
    std::string want = text(i), normalized;
    if (nfc && unicode_normalize(UnicodeForm::kNFC, want, normalized)) {
      want = normalized;
      ++normalized_lines;
    }
    if (tok.decode(tok.encode(text(i))) != want && ++failures <= 5) ADD_FAILURE() << "round trip of corpus line " << i + 1;
  }
  EXPECT_EQ(failures, 0u);
  if (nfc) EXPECT_GE(normalized_lines, 10u) << "the corpus should contain text that is not in NFC";
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyParity, ::testing::Values("qwen3", "llama3_1", "deepseek_v3"));

}  // namespace tokenizer_parity_test
}  // namespace distillery::text::testing
