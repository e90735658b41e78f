#include "data/text/added_vocabulary.h"

#include <algorithm>
#include <utility>

#include "data/text/normalizer.h"
#include "data/text/regex.h"
#include "data/text/unicode_normalization.h"
#include "data/text/utf8.h"

namespace distillery::text {

// A byte trie over token contents; find() gives the leftmost, then longest, match.
struct AddedVocabulary::Trie {
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;
    int32_t token = -1;  // index into tokens_
  };
  std::vector<Node> nodes{1};
  std::array<bool, 256> starts{};  // bytes a token can start with

  void insert(std::string_view key, int32_t token) {
    if (key.empty()) return;
    starts[static_cast<uint8_t>(key[0])] = true;
    int32_t at = 0;
    for (char c : key) {
      const auto byte = static_cast<uint8_t>(c);
      int32_t next = -1;
      for (const auto& [b, child] : nodes[at].children)
        if (b == byte) next = child;
      if (next < 0) {
        next = static_cast<int32_t>(nodes.size());
        nodes[at].children.emplace_back(byte, next);
        nodes.emplace_back();
      }
      at = next;
    }
    nodes[at].token = token;
  }

  bool find(std::string_view text, size_t from, size_t* begin, size_t* end, int32_t* token) const {
    for (size_t i = from; i < text.size(); ++i) {
      if (!starts[static_cast<uint8_t>(text[i])]) continue;
      int32_t at = 0, best = -1;
      size_t best_end = 0;
      for (size_t j = i; j < text.size(); ++j) {
        int32_t next = -1;
        const auto byte = static_cast<uint8_t>(text[j]);
        for (const auto& [b, child] : nodes[at].children)
          if (b == byte) next = child;
        if (next < 0) break;
        at = next;
        if (nodes[at].token >= 0) {
          best = nodes[at].token;
          best_end = j + 1;
        }
      }
      if (best >= 0) {
        *begin = i;
        *end = best_end;
        *token = best;
        return true;
      }
    }
    return false;
  }
};

AddedVocabulary::AddedVocabulary() = default;
AddedVocabulary::~AddedVocabulary() = default;
AddedVocabulary::AddedVocabulary(AddedVocabulary&&) noexcept = default;
AddedVocabulary& AddedVocabulary::operator=(AddedVocabulary&&) noexcept = default;

void AddedVocabulary::add(AddedToken token) {
  tokens_.erase(std::remove_if(tokens_.begin(), tokens_.end(),
                               [&](const AddedToken& t) { return t.id == token.id || t.content == token.content; }),
                tokens_.end());
  tokens_.push_back(std::move(token));
}

void AddedVocabulary::build(const Normalizer* normalizer) {
  std::sort(tokens_.begin(), tokens_.end(), [](const AddedToken& a, const AddedToken& b) { return a.id < b.id; });
  raw_trie_ = std::make_unique<Trie>();
  normalized_trie_ = std::make_unique<Trie>();
  bool any_single_word = false;
  std::vector<std::pair<std::string, int32_t>> contents;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    contents.emplace_back(tokens_[i].content, static_cast<int32_t>(i));
    AddedToken& t = tokens_[i];
    if (t.normalized) {
      t.normalized_content = normalizer != nullptr ? normalizer->apply(t.content) : t.content;
      normalized_trie_->insert(t.normalized_content, static_cast<int32_t>(i));
    } else {
      raw_trie_->insert(t.content, static_cast<int32_t>(i));
    }
    any_single_word = any_single_word || t.single_word;
  }
  by_content_.build(contents);
  if (any_single_word && word_char_ == nullptr) {
    // The reference tests single_word boundaries with the Rust regex crate's \w (UTS #18 word).
    word_char_ = Regex::pcre2("\\A[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]\\z");
  }
}

const AddedToken* AddedVocabulary::find(int32_t id) const {
  const auto it = std::lower_bound(tokens_.begin(), tokens_.end(), id,
                                   [](const AddedToken& t, int32_t v) { return t.id < v; });
  return it != tokens_.end() && it->id == id ? &*it : nullptr;
}

const AddedToken* AddedVocabulary::find(std::string_view content) const {
  const int32_t index = by_content_.find(content);
  return index >= 0 ? &tokens_[index] : nullptr;
}

int32_t AddedVocabulary::max_id() const { return tokens_.empty() ? -1 : tokens_.back().id; }

void AddedVocabulary::split(std::string_view text, bool normalized_tokens, std::vector<TextSegment>& out) const {
  if (text.empty()) return;
  const Trie* trie = normalized_tokens ? normalized_trie_.get() : raw_trie_.get();
  if (trie == nullptr || trie->nodes.size() == 1) {
    out.push_back({0, text.size(), -1});
    return;
  }
  const auto is_word_char_at = [&](size_t at) {  // the character starting at byte `at`
    size_t next = at;
    utf8::next(text, next);
    return word_char_->search(text.substr(at, next - at));
  };
  size_t start_offset = 0, from = 0, start = 0, stop = 0;
  int32_t index = -1;
  while (trie->find(text, from, &start, &stop, &index)) {
    from = stop;  // matching resumes after the match, whatever becomes of it
    const AddedToken& token = tokens_[index];
    if (token.single_word) {
      size_t before = start;
      const bool start_ok = start == 0 || (utf8::prev(text, before), !is_word_char_at(before));
      const bool stop_ok = stop == text.size() || !is_word_char_at(stop);
      if (!start_ok || !stop_ok) continue;
    }
    if (token.lstrip) {
      size_t k = start;
      while (k > 0) {
        size_t j = k;
        if (!is_white_space(utf8::prev(text, j))) break;
        k = j;
      }
      start = std::max(k, start_offset);
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t j = stop;
        if (!is_white_space(utf8::next(text, j))) break;
        stop = j;
      }
    }
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, token.id});
    start_offset = stop;
  }
  if (start_offset != text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace distillery::text
