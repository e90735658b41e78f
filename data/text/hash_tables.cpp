#include "data/text/hash_tables.h"

namespace distillery::text {

namespace hash_tables_detail {

size_t table_size(size_t count) {
  size_t n = 16;
  while (n < count * 2) n *= 2;  // load factor at most 1/2
  return n;
}

}  // namespace hash_tables_detail

void StringIdMap::build(const std::vector<std::pair<std::string, int32_t>>& entries) {
  slots_.assign(hash_tables_detail::table_size(entries.size()), Slot{});
  mask_ = slots_.size() - 1;
  keys_.clear();
  count_ = 0;
  for (const auto& [key, id] : entries) {
    const uint64_t h = hash_bytes(key.data(), key.size());
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.id < 0) {
        s.hash = h;
        s.offset = static_cast<uint32_t>(keys_.size());
        s.length = static_cast<uint32_t>(key.size());
        s.id = id;
        keys_ += key;
        ++count_;
        break;
      }
      if (s.hash == h && s.length == key.size() && keys_.compare(s.offset, s.length, key) == 0) {
        s.id = id;
        break;
      }
    }
  }
}

void MergeMap::build(const std::vector<std::pair<uint64_t, Merge>>& entries) {
  slots_.assign(hash_tables_detail::table_size(entries.size()), Slot{});
  mask_ = slots_.size() - 1;
  for (const auto& [k, merge] : entries) {
    for (size_t i = mix(k) & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.merge.id < 0 || s.key == k) {
        s.key = k;
        s.merge = merge;
        break;
      }
    }
  }
}

}  // namespace distillery::text
