#include "data/text/pre_tokenizer.h"

#include <algorithm>

#include "data/text/byte_level.h"
#include "data/text/regex.h"

namespace distillery::text {

std::string_view PreTokenizeScratch::materialize(const Piece& piece) {
  if (!piece.byte_level) return piece.text;
  owned.emplace_back();
  byte_level::map_bytes(piece.text, owned.back());
  return owned.back();
}

namespace pre_tokenizer_detail {

// What happens to the matches of a Split pattern (the reference's SplitDelimiterBehavior).
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Splits `text` at the matches of `regex` and appends the resulting pieces to scratch.next.
void split_text(std::string_view text, const Regex& regex, Behavior behavior, bool invert, bool byte_level,
                PreTokenizeScratch& s) {
  s.matches.clear();
  regex.find_all(text, s.matches);
  auto emit = [&](size_t b, size_t e) {
    if (e > b) s.next.push_back({text.substr(b, e - b), byte_level});
  };
  if (behavior == Behavior::kIsolated) {  // the common case, without the span list
    size_t prev = 0;
    for (const auto& [b, e] : s.matches) {
      emit(prev, b);
      emit(b, e);
      prev = e;
    }
    emit(prev, text.size());
    return;
  }
  // Matches and the gaps between them, in order, covering the text.
  s.spans.clear();
  size_t prev = 0;
  for (const auto& [b, e] : s.matches) {
    if (prev != b) s.spans.push_back({prev, b, invert});
    s.spans.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != text.size()) s.spans.push_back({prev, text.size(), invert});

  if (behavior == Behavior::kRemoved) {
    for (const auto& span : s.spans)
      if (!span.is_match) emit(span.begin, span.end);
    return;
  }
  // The merging behaviors fold spans into the previous (or, read backwards, the next) one.
  std::vector<PreTokenizeScratch::Span> merged;
  bool previous_match = false;
  auto fold = [&](const PreTokenizeScratch::Span& span, bool backwards) {
    bool join = false;
    if (behavior == Behavior::kContiguous) join = span.is_match == previous_match;
    else join = span.is_match && !previous_match;
    if (join && !merged.empty()) {
      if (backwards) merged.back().begin = span.begin;
      else merged.back().end = span.end;
    } else {
      merged.push_back(span);
    }
    previous_match = span.is_match;
  };
  if (behavior == Behavior::kMergedWithNext) {
    for (auto it = s.spans.rbegin(); it != s.spans.rend(); ++it) fold(*it, true);
    std::reverse(merged.begin(), merged.end());
  } else {
    for (const auto& span : s.spans) fold(span, false);
  }
  for (const auto& span : merged) emit(span.begin, span.end);
}

Behavior parse_behavior(const JsonNode& node) {
  const std::string name = node.as_string();
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  node.fail("'" + name + "' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> regex, Behavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}

  void pre_tokenize(PreTokenizeScratch& s) const override {
    s.next.clear();
    for (const Piece& piece : s.pieces) split_text(s.materialize(piece), *regex_, behavior_, invert_, false, s);
    s.pieces.swap(s.next);
  }

 private:
  std::unique_ptr<Regex> regex_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's word pattern, used by ByteLevel when use_regex is true.
const Regex& gpt2_regex() {
  static const std::unique_ptr<Regex> re =
      Regex::onig(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  return *re;
}

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}

  void pre_tokenize(PreTokenizeScratch& s) const override {
    if (!add_prefix_space_ && !use_regex_) {  // the common case after a Split: just mark the pieces
      for (Piece& piece : s.pieces) {
        if (piece.byte_level) piece.text = s.materialize(piece);
        piece.byte_level = true;
      }
      return;
    }
    s.next.clear();
    for (const Piece& piece : s.pieces) {
      std::string_view text = s.materialize(piece);
      // The reference prefixes every piece that does not start with a space, not just the first.
      if (add_prefix_space_ && !text.empty() && text.front() != ' ') {
        s.owned.emplace_back(" ");
        s.owned.back().append(text);
        text = s.owned.back();
      }
      if (use_regex_) split_text(text, gpt2_regex(), Behavior::kIsolated, false, true, s);
      else if (!text.empty()) s.next.push_back({text, true});
    }
    s.pieces.swap(s.next);
  }

 private:
  bool add_prefix_space_;
  bool use_regex_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(PreTokenizeScratch& s) const override {
    for (const auto& step : steps_) step->pre_tokenize(s);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace pre_tokenizer_detail

std::unique_ptr<PreTokenizer> PreTokenizer::parse(const JsonNode& node) {
  namespace d = pre_tokenizer_detail;
  const std::string type = node.type();
  if (type == "Sequence") {
    const JsonNode list = node.at("pretokenizers");
    list.require_array();
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(parse(list.at(i)));
    return std::make_unique<d::SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Split") {
    return std::make_unique<d::SplitPreTokenizer>(regex_from_pattern_json(node.at("pattern")),
                                                  d::parse_behavior(node.at("behavior")),
                                                  node.get_bool("invert", false));
  }
  if (type == "ByteLevel") {
    return std::make_unique<d::ByteLevelPreTokenizer>(node.get_bool("add_prefix_space", true),
                                                      node.get_bool("use_regex", true));
  }
  if (type == "Digits") {
    // Rust's char::is_numeric is the N category; each numeric character is its own match.
    const bool individual = node.get_bool("individual_digits", false);
    return std::make_unique<d::SplitPreTokenizer>(Regex::onig("\\p{N}"),
                                                  individual ? d::Behavior::kIsolated : d::Behavior::kContiguous, false);
  }
  node.at("type").fail("'" + type + "' is not supported");
}

}  // namespace distillery::text
