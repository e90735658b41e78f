#include "data/text/word_cache.h"

#include <cstring>
#include <memory>
#include <utility>

#include "data/text/hash_tables.h"

namespace distillery::text {

namespace word_cache_detail {

// Caches of the models this thread used most recently, most recent first.
constexpr size_t kModelsPerThread = 8;

struct ThreadCaches {
  std::vector<std::pair<uint64_t, std::unique_ptr<WordCache>>> entries;
};

}  // namespace word_cache_detail

WordCache::WordCache() : slots_(kInitialSlots) {}

WordCache& WordCache::for_thread(uint64_t owner) {
  thread_local word_cache_detail::ThreadCaches caches;
  auto& e = caches.entries;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e[i].first != owner) continue;
    if (i != 0) std::swap(e[0], e[i]);
    return *e[0].second;
  }
  if (e.size() >= word_cache_detail::kModelsPerThread) e.pop_back();
  e.insert(e.begin(), {owner, std::unique_ptr<WordCache>(new WordCache())});
  return *e[0].second;
}

uint64_t WordCache::hash(std::string_view word, uint8_t flavor) {
  return hash_bytes(word.data(), word.size()) ^ (static_cast<uint64_t>(flavor) * 0x9E3779B97F4A7C15ull);
}

const int32_t* WordCache::find(std::string_view word, uint8_t flavor, size_t* count) const {
  const uint64_t h = hash(word, flavor);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (!s.used) return nullptr;
    if (s.hash == h && s.flavor == flavor && s.key_length == word.size() &&
        std::memcmp(keys_.data() + s.key_offset, word.data(), word.size()) == 0) {
      *count = s.id_count;
      return ids_.data() + s.ids_offset;
    }
  }
}

void WordCache::insert(std::string_view word, uint8_t flavor, const int32_t* ids, size_t count) {
  if (word.size() > kMaxWordBytes || count > 255) return;
  if (size_ >= kMaxEntries) {
    slots_.assign(kInitialSlots, Slot{});
    mask_ = kInitialSlots - 1;
    keys_.clear();
    ids_.clear();
    size_ = 0;
  } else if (2 * (size_ + 1) > slots_.size()) {
    grow();
  }
  const uint64_t h = hash(word, flavor);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.used) continue;
    s.used = true;
    s.hash = h;
    s.flavor = flavor;
    s.key_offset = static_cast<uint32_t>(keys_.size());
    s.key_length = static_cast<uint8_t>(word.size());
    s.ids_offset = static_cast<uint32_t>(ids_.size());
    s.id_count = static_cast<uint8_t>(count);
    keys_.append(word);
    ids_.insert(ids_.end(), ids, ids + count);
    ++size_;
    return;
  }
}

void WordCache::grow() {
  std::vector<Slot> old(slots_.size() * 2);
  old.swap(slots_);
  mask_ = slots_.size() - 1;
  for (const Slot& s : old) {
    if (!s.used) continue;
    size_t i = s.hash & mask_;
    while (slots_[i].used) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

}  // namespace distillery::text
