// Oniguruma -> PCRE2 translation: every Unicode class matches, code point for code point, what
// the reference's Oniguruma matches (tests/assets/onig_unicode_sets.json, dumped by
// tests/parity/onig_unicode_sets.js), and Ruby-syntax details translate as Oniguruma reads them.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "data/text/regex.h"
#include "data/text/utf8.h"
#include "tests/unit/data/text/text_test_util.h"

namespace distillery::text::testing {
namespace regex_test {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

// Every code point (no surrogates) in one string, and where each one starts.
struct AllCodePoints {
  std::string text;
  std::vector<size_t> offsets;
  std::vector<uint32_t> code_points;
  AllCodePoints() {
    for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      offsets.push_back(text.size());
      code_points.push_back(cp);
      utf8::append(text, cp);
    }
  }
};

const AllCodePoints& all_code_points() {
  static const AllCodePoints all;
  return all;
}

// The code points `pattern` matches, as ranges, found by matching it (with +) over all of them.
Ranges matched_ranges(const std::string& pattern) {
  const auto& all = all_code_points();
  const auto re = Regex::onig("(?:" + pattern + ")+");
  std::vector<std::pair<size_t, size_t>> matches;
  re->find_all(all.text, matches);
  Ranges out;
  for (const auto& [b, e] : matches) {
    const size_t first = std::lower_bound(all.offsets.begin(), all.offsets.end(), b) - all.offsets.begin();
    const size_t last = std::lower_bound(all.offsets.begin(), all.offsets.end(), e) - all.offsets.begin() - 1;
    const uint32_t lo = all.code_points[first], hi = all.code_points[last];
    if (!out.empty() && out.back().second + 1 == lo) out.back().second = hi;
    else out.emplace_back(lo, hi);
  }
  return out;
}

Ranges surrogate_free(const Ranges& in) {
  Ranges out;
  for (auto r : in) {
    if (!out.empty() && out.back().second + 1 == r.first) out.back().second = r.second;
    else if (!out.empty() && out.back().second == 0xD7FF && r.first == 0xE000) out.back().second = r.second;
    else out.push_back(r);
  }
  return out;
}

Ranges complement(const Ranges& in) {
  Ranges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : in) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= 0x10FFFF) out.emplace_back(next, 0x10FFFF);
  Ranges no_surrogates;  // the surrogate block cannot appear in UTF-8 text
  for (auto [lo, hi] : out) {
    if (hi < 0xD800 || lo > 0xDFFF) {
      no_surrogates.emplace_back(lo, hi);
      continue;
    }
    if (lo < 0xD800) no_surrogates.emplace_back(lo, 0xD7FF);
    if (hi > 0xDFFF) no_surrogates.emplace_back(0xE000, hi);
  }
  return surrogate_free(no_surrogates);
}

Ranges unite(const std::vector<Ranges>& sets) {
  std::vector<bool> in(0x110000, false);
  for (const auto& s : sets)
    for (const auto& [lo, hi] : s)
      for (uint32_t cp = lo; cp <= hi; ++cp) in[cp] = true;
  Ranges out;
  for (uint32_t cp = 0; cp < in.size(); ++cp) {
    if (!in[cp]) continue;
    if (!out.empty() && out.back().second + 1 == cp) out.back().second = cp;
    else out.emplace_back(cp, cp);
  }
  return surrogate_free(out);
}

const nlohmann::json& onig_sets() {
  static const nlohmann::json sets = [] {
    std::ifstream in(source_path("tests/assets/onig_unicode_sets.json"));
    return nlohmann::json::parse(in)["sets"];
  }();
  return sets;
}

Ranges onig_set(const std::string& cls) { return surrogate_free(onig_sets().at(cls).get<Ranges>()); }

TEST(OnigRegex, EveryUnicodeClassMatchesOnigurumasCodePoints) {
  ASSERT_GE(onig_sets().size(), 40u);
  for (const auto& [cls, ranges] : onig_sets().items()) {
    EXPECT_EQ(matched_ranges(cls), onig_set(cls)) << cls;
  }
}

TEST(OnigRegex, NegatedClassesMatchTheComplement) {
  EXPECT_EQ(matched_ranges("\\S"), complement(onig_set("\\s")));
  EXPECT_EQ(matched_ranges("\\W"), complement(onig_set("\\w")));
  EXPECT_EQ(matched_ranges("\\P{L}"), complement(onig_set("\\p{L}")));
  EXPECT_EQ(matched_ranges("\\p{^N}"), complement(onig_set("\\p{N}")));
}

TEST(OnigRegex, BracketsCombineClassesLikeOniguruma) {
  // Qwen's and Llama's ` ?[^\s\p{L}\p{N}]+` and DeepSeek's `[\p{L}\p{M}]+`.
  EXPECT_EQ(matched_ranges("[^\\s\\p{L}\\p{N}]"), complement(unite({onig_set("\\s"), onig_set("\\p{L}"), onig_set("\\p{N}")})));
  EXPECT_EQ(matched_ranges("[\\p{L}\\p{M}]"), unite({onig_set("\\p{L}"), onig_set("\\p{M}")}));
  // A bracket mixing a negated class: [\p{L}\S] = L or not-space; [^\d\S] = space and not digit.
  EXPECT_EQ(matched_ranges("[\\p{N}\\S]"), complement(onig_set("\\s")));
  EXPECT_EQ(matched_ranges("[^\\p{Zs}\\S]"),
            complement(unite({onig_set("\\p{Zs}"), complement(onig_set("\\s"))})));
}

std::vector<std::string> pieces(const std::string& pattern, const std::string& text) {
  const auto re = Regex::onig(pattern);
  std::vector<std::pair<size_t, size_t>> matches;
  re->find_all(text, matches);
  std::vector<std::string> out;
  for (const auto& [b, e] : matches) out.push_back(text.substr(b, e - b));
  return out;
}

TEST(OnigRegex, RubySyntaxDetailsTranslate) {
  EXPECT_EQ(pieces("^a", "a\nab\na"), (std::vector<std::string>{"a", "a", "a"}));  // ^ is a line anchor
  EXPECT_EQ(pieces("a$", "a\naba"), (std::vector<std::string>{"a", "a"}));
  EXPECT_EQ(pieces("\\h+", "0aG f"), (std::vector<std::string>{"0a", "f"}));       // \h is a hex digit
  EXPECT_EQ(pieces("x{,2}", "xxx"), (std::vector<std::string>{"xx", "x"}));        // {,n} is {0,n}
  EXPECT_EQ(pieces("\\v", "a\x0b" "b\n"), (std::vector<std::string>{"\x0b"}));    // \v is VT only
  EXPECT_EQ(pieces("(?m:a.b)", "a\nb"), (std::vector<std::string>{"a\nb"}));       // Ruby's m is dotall
  EXPECT_EQ(pieces("\\u00e9|\\x{4e2d}|\\x41", "é中A"), (std::vector<std::string>{"é", "中", "A"}));
  EXPECT_EQ(pieces("(?i:'s)", "'s 'S '\u017f"), (std::vector<std::string>{"'s", "'S", "'\u017f"}));
}

TEST(OnigRegex, EmptyMatchesStepLikeTheOnigCrate) {
  // After a non-empty match the empty match right behind it is skipped, as onig's find_iter does.
  EXPECT_EQ(pieces("a*", "baab"), (std::vector<std::string>{"", "aa", ""}));
  EXPECT_EQ(pieces("x*", "xab"), (std::vector<std::string>{"x", "", ""}));
}

TEST(OnigRegex, UnsupportedConstructsAreRejectedByName) {
  for (const char* pattern : {"\\R", "\\X", "a\\Kb", "[[:alpha:]]", "[a-z&&[^b]]", "[a[bc]]", "(?a)x", "\\p{Han}", "a{1,2}+"}) {
    EXPECT_THROW(Regex::onig(pattern), std::invalid_argument) << pattern;
  }
  try {
    Regex::onig("\\p{Greek}");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("\\p{Greek}"), std::string::npos) << e.what();
  }
}

TEST(OnigRegex, LiteralPatternsMatchThemselves) {
  const auto re = Regex::onig(escape_regex_literal("a.b*(c)[d]\\"));
  EXPECT_TRUE(re->search("xx a.b*(c)[d]\\ yy"));
  EXPECT_FALSE(re->search("aXbbb(c)[d]\\"));
}

}  // namespace regex_test
}  // namespace distillery::text::testing
