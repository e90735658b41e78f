// Open-addressing hash tables for the tokenizer's hot paths: string -> id (vocabularies) and
// (id, id) -> (rank, id) (BPE merges). Lookups take string_views and never allocate; both tables
// are built once and read concurrently.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace distillery::text {

// 64-bit hash of a short byte string (words, tokens): 8 bytes at a time, multiply-mix.
inline uint64_t hash_bytes(const char* data, size_t n) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = n * kMul;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, data, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
    data += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, data, n);
    h = (h ^ w ^ (static_cast<uint64_t>(n) << 59)) * kMul;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

class StringIdMap {
 public:
  StringIdMap() = default;
  // Later duplicates of a key replace earlier ones.
  void build(const std::vector<std::pair<std::string, int32_t>>& entries);
  // The id of `key`, or -1.
  int32_t find(std::string_view key) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash_bytes(key.data(), key.size());
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.hash == h && s.length == key.size() && std::memcmp(keys_.data() + s.offset, key.data(), key.size()) == 0)
        return s.id;
    }
  }
  size_t size() const { return count_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0;
    uint32_t length = 0;
    int32_t id = -1;
  };
  std::vector<Slot> slots_;
  std::string keys_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// BPE merges: pair of token ids -> (rank, id of the merged token).
class MergeMap {
 public:
  struct Merge {
    uint32_t rank;
    int32_t id;
  };
  // Later duplicates of a pair replace earlier ones (as in the reference's HashMap).
  void build(const std::vector<std::pair<uint64_t, Merge>>& entries);
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
  // nullptr when (a, b) does not merge.
  const Merge* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(a, b);
    for (size_t i = mix(k) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.merge.id < 0) return nullptr;
      if (s.key == k) return &s.merge;
    }
  }

 private:
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    return k;
  }
  struct Slot {
    uint64_t key = 0;
    Merge merge{0, -1};
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace distillery::text
