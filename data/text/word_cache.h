// A per-thread memo of word -> token ids for one BPE model. Text repeats its words, so most
// pieces are answered from here without running the merge loop. Being per thread, it needs no
// lock, and concurrent encode() calls never contend; a thread keeps the caches of its few most
// recently used models.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace distillery::text {

class WordCache {
 public:
  // Longest word worth caching, in bytes (the reference caches words under 256 bytes too).
  static constexpr size_t kMaxWordBytes = 255;

  // The calling thread's cache for the model with unique id `owner`.
  static WordCache& for_thread(uint64_t owner);

  // The cached ids of `word` (seen with `flavor`), or nullptr.
  const int32_t* find(std::string_view word, uint8_t flavor, size_t* count) const;
  // Remembers the ids of `word`; when full, the cache starts over.
  void insert(std::string_view word, uint8_t flavor, const int32_t* ids, size_t count);

  size_t size() const { return size_; }

 private:
  WordCache();
  static uint64_t hash(std::string_view word, uint8_t flavor);
  void grow();

  struct Slot {
    uint64_t hash = 0;
    uint32_t key_offset = 0;
    uint32_t ids_offset = 0;
    uint8_t key_length = 0;
    uint8_t id_count = 0;
    uint8_t flavor = 0;
    bool used = false;
  };
  // The table starts small and doubles with the number of distinct words, so that typical text
  // (a few thousand words) stays in the CPU cache; at the limit it starts over.
  static constexpr size_t kInitialSlots = 1 << 10;
  static constexpr size_t kMaxSlots = 1 << 16;
  static constexpr size_t kMaxEntries = kMaxSlots / 2;
  std::vector<Slot> slots_;
  size_t mask_ = kInitialSlots - 1;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t size_ = 0;
};

}  // namespace distillery::text
