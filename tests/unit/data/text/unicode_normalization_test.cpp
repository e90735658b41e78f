// NFC/NFD/NFKC/NFKD against the reference on the probe strings of
// tests/assets/unicode_normalization_expected.jsonl (tests/parity/gen_unicode_normalization.cpp):
// every probe where utf8proc alone would differ from the reference, and a sample of the rest.
#include <gtest/gtest.h>

#include "data/text/unicode_normalization.h"
#include "tests/unit/data/text/text_test_util.h"

namespace distillery::text::testing {
namespace unicode_normalization_test {

std::string normalized(UnicodeForm form, const std::string& text) {
  std::string out;
  return unicode_normalize(form, text, out) ? out : text;
}

TEST(UnicodeNormalization, MatchesTheReferenceOnEveryProbe) {
  const auto rows = read_jsonl(source_path("tests/assets/unicode_normalization_expected.jsonl"));
  ASSERT_GE(rows.size(), 500u);
  const std::pair<const char*, UnicodeForm> forms[] = {
      {"NFC", UnicodeForm::kNFC}, {"NFD", UnicodeForm::kNFD}, {"NFKC", UnicodeForm::kNFKC}, {"NFKD", UnicodeForm::kNFKD}};
  size_t failures = 0;
  for (const auto& row : rows) {
    const std::string text = row["text"].get<std::string>();
    for (const auto& [name, form] : forms) {
      const std::string want = row[name].get<std::string>();
      if (normalized(form, text) != want && ++failures <= 5) {
        ADD_FAILURE() << name << " of " << nlohmann::json(text).dump() << ": expected " << nlohmann::json(want).dump()
                      << ", got " << nlohmann::json(normalized(form, text)).dump();
      }
    }
  }
  EXPECT_EQ(failures, 0u);
}

TEST(UnicodeNormalization, ComposesDecomposesAndReportsUnchangedText) {
  std::string out;
  EXPECT_FALSE(unicode_normalize(UnicodeForm::kNFC, "plain ASCII and caf\xC3\xA9", out));
  EXPECT_TRUE(unicode_normalize(UnicodeForm::kNFC, "cafe\xCC\x81", out));  // e + combining acute
  EXPECT_EQ(out, "caf\xC3\xA9");
  EXPECT_TRUE(unicode_normalize(UnicodeForm::kNFD, "caf\xC3\xA9", out));
  EXPECT_EQ(out, "cafe\xCC\x81");
  EXPECT_TRUE(unicode_normalize(UnicodeForm::kNFKC, "\xEF\xAC\x81" "x\xC2\xB2", out));  // fi ligature, superscript two
  EXPECT_EQ(out, "fix2");
  EXPECT_FALSE(unicode_normalize(UnicodeForm::kNFC, "\xE4\xB8\xAD\xE6\x96\x87", out));  // CJK is stable
  EXPECT_TRUE(unicode_normalize(UnicodeForm::kNFC, "\xEA\xB0\x80\xE1\x86\xA8", out));  // Hangul LV + T composes
  EXPECT_EQ(out, "\xEA\xB0\x81");
}

TEST(UnicodeNormalization, LeavesCodePointsTheReferenceDoesNotKnowAlone) {
  // U+11935 U+11930 compose to U+11938 in Unicode 13+, but not in the reference's tables.
  const std::string pair = "\xF0\x91\xA4\xB5\xF0\x91\xA4\xB0";
  EXPECT_EQ(normalized(UnicodeForm::kNFC, pair), pair);
  // U+07FD (Unicode 11, class 220) is not reordered before U+0334 (class 1) by the reference.
  const std::string marks = "a\xDF\xBD\xCC\xB4";
  EXPECT_EQ(normalized(UnicodeForm::kNFD, marks), marks);
}

}  // namespace unicode_normalization_test
}  // namespace distillery::text::testing
