// Regexes from tokenizer.json, matched as Hugging Face tokenizers matches them.
//
// The reference compiles these patterns with Oniguruma (Ruby syntax, Unicode 16 tables). We
// translate each pattern to PCRE2 (JIT-compiled) so that it matches the same strings:
//   - \s \w \d \b and \p{..} become classes with Oniguruma's code point sets (PCRE2's tables are
//     older; see onig_unicode_classes.inc and tests/parity/gen_onig_unicode_classes.cpp);
//   - ^ and $ are line anchors, (?m) means "dot matches newline", \h is a hex digit, \v is VT,
//     \uHHHH is a code point, {,n} is {0,n} - all as in Ruby syntax;
//   - constructs whose meaning we have not pinned down (\R, \X, \K, POSIX brackets, class
//     intersections, ...) are rejected with a message naming the construct.
// find_all() reproduces the onig crate's find_iter, including how it steps over empty matches.
// Regex::pcre2() takes PCRE2 syntax directly (for the few Rust-regex checks the reference makes).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace distillery::text {

class JsonNode;

// Translates an Oniguruma pattern to PCRE2 syntax; throws std::invalid_argument naming the
// construct it cannot translate.
std::string translate_onig_pattern(std::string_view pattern);

// Escapes a literal string so that it matches itself (used for {"String": ...} patterns).
std::string escape_regex_literal(std::string_view literal);

class Regex {
 public:
  // `pattern` in Oniguruma syntax; throws std::invalid_argument when it cannot be used.
  static std::unique_ptr<Regex> onig(std::string_view pattern);
  // `pattern` in PCRE2 syntax (compiled with UTF, UCP and MULTILINE).
  static std::unique_ptr<Regex> pcre2(std::string_view pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All matches as byte ranges [begin, end) of `text` (valid UTF-8), appended to `out`.
  // Safe to call from several threads at once.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  // Whether the regex matches somewhere in text.
  bool search(std::string_view text) const;

  // The pattern as written in tokenizer.json, and as given to PCRE2.
  const std::string& source() const { return source_; }
  const std::string& translated() const { return translated_; }

 private:
  Regex(std::string source, std::string translated);

  // Leftmost match starting at or after `start`; false when there is none.
  bool match_from(std::string_view text, size_t start, size_t* begin, size_t* end) const;

  std::string source_;
  std::string translated_;
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

// The regex of a tokenizer.json pattern object, {"String": literal} or {"Regex": pattern};
// a pattern that cannot be used fails naming its JSON path.
std::unique_ptr<Regex> regex_from_pattern_json(const JsonNode& pattern);

}  // namespace distillery::text
