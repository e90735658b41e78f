#include "data/text/bpe_model.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <limits>

#include "data/text/byte_level.h"
#include "data/text/utf8.h"
#include "data/text/word_cache.h"

namespace distillery::text {

namespace bpe_model_detail {

std::atomic<uint64_t> next_cache_owner{1};

constexpr uint32_t kNoMerge = std::numeric_limits<uint32_t>::max();
// Words longer than this (in symbols) use the priority queue instead of rescanning all pairs.
constexpr size_t kShortWord = 48;

// Per-thread buffers for the merge loop, so encoding a word allocates nothing.
struct MergeScratch {
  std::vector<int32_t> symbols;
  std::vector<uint32_t> ranks;
  std::vector<int32_t> merged_ids;
  std::string mapped;
  struct Node {
    int32_t id, prev, next;
    bool alive;
  };
  std::vector<Node> nodes;
  struct Candidate {
    uint32_t rank;
    int32_t pos, id;
  };
  std::vector<Candidate> heap;
};

MergeScratch& scratch() {
  thread_local MergeScratch s;
  return s;
}

}  // namespace bpe_model_detail

std::unique_ptr<BpeModel> BpeModel::parse(const JsonNode& node) {
  std::unique_ptr<BpeModel> m(new BpeModel());
  if (const auto dropout = node.find("dropout")) {
    if (!dropout->value().is_number()) dropout->fail("must be a number or null");
    if (dropout->value().get<double>() != 0.0) dropout->fail("is set: BPE dropout (random merges) is not supported");
  }
  if (const auto p = node.find("continuing_subword_prefix")) m->continuing_subword_prefix_ = p->as_string();
  if (const auto s = node.find("end_of_word_suffix")) m->end_of_word_suffix_ = s->as_string();
  m->fuse_unk_ = node.get_bool("fuse_unk", false);
  m->byte_fallback_ = node.get_bool("byte_fallback", false);
  m->ignore_merges_ = node.get_bool("ignore_merges", false);

  // Vocabulary.
  const JsonNode vocab = node.at("vocab");
  vocab.require_object();
  std::vector<std::pair<std::string, int32_t>> entries;
  entries.reserve(vocab.size());
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab.value().items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      JsonNode(id, vocab.file(), vocab.path() + "[\"" + token + "\"]").fail("must be a non-negative token id");
    }
    entries.emplace_back(token, static_cast<int32_t>(id.get<int64_t>()));
    max_id = std::max(max_id, entries.back().second);
  }
  m->vocab_.build(entries);
  m->id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  m->id_used_.assign(static_cast<size_t>(max_id + 1), false);
  std::vector<std::pair<std::string, int32_t>> raw_entries;
  std::string raw;
  for (const auto& [token, id] : entries) {
    if (!m->id_used_[id]) {
      m->id_to_token_[id] = token;
      m->id_used_[id] = true;
    }
    raw.clear();
    if (byte_level::unmap_chars(token, raw)) raw_entries.emplace_back(raw, id);
  }
  m->raw_vocab_.build(raw_entries);
  m->bytes_complete_ = m->continuing_subword_prefix_.empty() && m->end_of_word_suffix_.empty();
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8::append(ch, byte_level::char_of_byte(static_cast<uint8_t>(b)));
    m->byte_ids_[b] = m->vocab_.find(ch);
    m->bytes_complete_ = m->bytes_complete_ && m->byte_ids_[b] >= 0;
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    m->byte_fallback_ids_[b] = m->vocab_.find(name);
  }
  if (const auto unk = node.find("unk_token")) {
    m->unk_id_ = m->vocab_.find(unk->as_string());
    if (m->unk_id_ < 0) unk->fail("'" + unk->as_string() + "' is not in the vocabulary");
  }

  // Merges, ranked by position: "a b" strings (the legacy form) or ["a", "b"] pairs.
  const JsonNode merges = node.at("merges");
  merges.require_array();
  std::vector<std::pair<uint64_t, MergeMap::Merge>> merge_entries;
  merge_entries.reserve(merges.size());
  const size_t prefix_len = m->continuing_subword_prefix_.size();
  uint32_t rank = 0;
  std::string joined;
  const auto& list = merges.value();
  for (size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& item = list[i];
    // JsonNode (which builds its path) only on the error paths: there are ~10^5 merges.
    const auto fail = [&](const std::string& what) { merges.at(i).fail(what); };
    const std::string* a = nullptr;
    const std::string* b = nullptr;
    std::string a_part, b_part;
    if (item.is_string()) {
      const std::string& line = item.get_ref<const std::string&>();
      if (line.rfind("#version", 0) == 0) continue;
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        fail("'" + line + "' must be two tokens separated by one space");
      }
      a_part.assign(line, 0, space);
      b_part.assign(line, space + 1, std::string::npos);
      a = &a_part;
      b = &b_part;
    } else {
      if (!item.is_array() || item.size() != 2 || !item[0].is_string() || !item[1].is_string()) {
        fail("must be a pair of token strings");
      }
      a = &item[0].get_ref<const std::string&>();
      b = &item[1].get_ref<const std::string&>();
    }
    const int32_t a_id = m->vocab_.find(*a), b_id = m->vocab_.find(*b);
    if (a_id < 0) fail("'" + *a + "' is not in the vocabulary");
    if (b_id < 0) fail("'" + *b + "' is not in the vocabulary");
    if (b->size() < prefix_len) fail("'" + *b + "' is shorter than continuing_subword_prefix");
    joined.assign(*a);
    joined.append(*b, prefix_len, std::string::npos);
    const int32_t id = m->vocab_.find(joined);
    if (id < 0) fail("merges into '" + joined + "', which is not in the vocabulary");
    merge_entries.push_back({MergeMap::key(a_id, b_id), {rank++, id}});
  }
  m->merges_.build(merge_entries);
  m->cache_owner_ = bpe_model_detail::next_cache_owner++;
  return m;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !id_used_[id]) return nullptr;
  return &id_to_token_[id];
}

void BpeModel::encode(const Piece& piece, WordCache& cache, std::vector<int32_t>& out) const {
  const std::string_view text = piece.text;
  if (text.empty()) return;
  if (ignore_merges_) {
    const int32_t id = piece.byte_level ? raw_vocab_.find(text) : vocab_.find(text);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = text.size() <= WordCache::kMaxWordBytes;
  const uint8_t flavor = piece.byte_level ? 1 : 0;
  if (cacheable) {
    size_t count = 0;
    if (const int32_t* ids = cache.find(text, flavor, &count)) {
      out.insert(out.end(), ids, ids + count);
      return;
    }
  }
  auto& symbols = bpe_model_detail::scratch().symbols;
  tokenize_word(text, piece.byte_level, symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
  if (cacheable) cache.insert(text, flavor, symbols.data(), symbols.size());
}

void BpeModel::tokenize_word(std::string_view word, bool byte_level, std::vector<int32_t>& symbols) const {
  symbols.clear();
  if (byte_level && bytes_complete_) {
    for (char c : word) symbols.push_back(byte_ids_[static_cast<uint8_t>(c)]);
  } else if (byte_level) {
    auto& mapped = bpe_model_detail::scratch().mapped;
    mapped.clear();
    byte_level::map_bytes(word, mapped);
    initial_symbols(mapped, symbols);
  } else {
    initial_symbols(word, symbols);
  }
  merge(symbols);
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& symbols) const {
  int32_t pending_unk = -1;  // an unknown run not yet emitted (fuse_unk joins consecutive ones)
  const bool affixes = !continuing_subword_prefix_.empty() || !end_of_word_suffix_.empty();
  std::string with_affixes;
  size_t i = 0;
  while (i < word.size()) {
    const size_t start = i;
    utf8::next(word, i);
    std::string_view s = word.substr(start, i - start);
    if (affixes) {
      with_affixes.assign(s);
      if (start != 0) with_affixes.insert(0, continuing_subword_prefix_);
      if (i == word.size()) with_affixes += end_of_word_suffix_;
      s = with_affixes;
    }
    const int32_t id = vocab_.find(s);
    if (id >= 0) {
      if (pending_unk >= 0) symbols.push_back(pending_unk);
      pending_unk = -1;
      symbols.push_back(id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : s) all = all && byte_fallback_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : s) symbols.push_back(byte_fallback_ids_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk >= 0 && !fuse_unk_) symbols.push_back(pending_unk);
      pending_unk = unk_id_;
    }
    // Without an unk token the reference drops the character.
  }
  if (pending_unk >= 0) symbols.push_back(pending_unk);
}

void BpeModel::merge(std::vector<int32_t>& symbols) const {
  using bpe_model_detail::kNoMerge;
  if (symbols.size() < 2) return;
  if (symbols.size() > bpe_model_detail::kShortWord) {
    merge_long(symbols);
    return;
  }
  auto& s = bpe_model_detail::scratch();
  auto& ranks = s.ranks;
  auto& merged = s.merged_ids;
  const auto pair_at = [&](size_t i) {
    const MergeMap::Merge* m = merges_.find(symbols[i], symbols[i + 1]);
    ranks[i] = m ? m->rank : kNoMerge;
    merged[i] = m ? m->id : -1;
  };
  ranks.resize(symbols.size() - 1);
  merged.resize(symbols.size() - 1);
  for (size_t i = 0; i + 1 < symbols.size(); ++i) pair_at(i);
  while (true) {
    uint32_t best = kNoMerge;
    size_t at = 0;
    for (size_t i = 0; i < ranks.size(); ++i) {
      if (ranks[i] < best) {
        best = ranks[i];
        at = i;
      }
    }
    if (best == kNoMerge) break;
    symbols[at] = merged[at];
    symbols.erase(symbols.begin() + at + 1);
    ranks.erase(ranks.begin() + at);
    merged.erase(merged.begin() + at);
    if (at > 0) pair_at(at - 1);
    if (at + 1 < symbols.size()) pair_at(at);
  }
}

void BpeModel::merge_long(std::vector<int32_t>& symbols) const {
  // The reference's loop: a min-queue of (rank, position) candidates; entries made stale by an
  // earlier merge are recognized because the pair at their position no longer merges into the
  // same token.
  auto& s = bpe_model_detail::scratch();
  auto& nodes = s.nodes;
  auto& heap = s.heap;
  using Candidate = bpe_model_detail::MergeScratch::Candidate;
  const auto lower_priority = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  const int32_t n = static_cast<int32_t>(symbols.size());
  nodes.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) nodes[i] = {symbols[i], i - 1, i + 1 < n ? i + 1 : -1, true};
  const auto consider = [&](int32_t pos) {
    const int32_t next = nodes[pos].next;
    if (next < 0) return;
    if (const MergeMap::Merge* m = merges_.find(nodes[pos].id, nodes[next].id)) {
      heap.push_back({m->rank, pos, m->id});
      std::push_heap(heap.begin(), heap.end(), lower_priority);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower_priority);
    const Candidate top = heap.back();
    heap.pop_back();
    auto& node = nodes[top.pos];
    if (!node.alive || node.next < 0) continue;
    const MergeMap::Merge* m = merges_.find(node.id, nodes[node.next].id);
    if (m == nullptr || m->id != top.id) continue;
    auto& right = nodes[node.next];
    node.id = top.id;
    right.alive = false;
    node.next = right.next;
    if (right.next >= 0) nodes[right.next].prev = top.pos;
    if (node.prev >= 0) consider(node.prev);
    consider(top.pos);
  }
  symbols.clear();
  for (int32_t i = 0; i >= 0; i = nodes[i].next) symbols.push_back(nodes[i].id);
}

}  // namespace distillery::text
