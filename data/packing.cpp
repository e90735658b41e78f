#include "data/packing.h"

#include <numeric>
#include <random>

#include "common/error.h"
#include "common/ignore_index.h"

namespace distillery {

std::vector<PackedRow> pack_rows(const ExampleStore& store, const std::vector<uint32_t>& order, int64_t max_seq_len,
                                 const std::string& truncation, bool packing, PackStats* stats) {
  std::vector<PackedRow> rows;
  PackedRow cur;
  int64_t used = 0;
  for (uint32_t ex : order) {
    int64_t len = store.length(ex);
    if (len > max_seq_len) {
      if (truncation == "drop") {
        if (stats) ++stats->dropped;
        continue;
      }
      if (stats) ++stats->truncated;
      len = max_seq_len;
    }
    if (!cur.empty() && (!packing || used + len > max_seq_len)) {
      rows.push_back(std::move(cur));
      cur.clear();
      used = 0;
    }
    cur.push_back({ex, static_cast<int32_t>(len)});
    used += len;
  }
  if (!cur.empty()) rows.push_back(std::move(cur));
  return rows;
}

int64_t count_targets(const ExampleStore& store, const PackedRow& row) {
  int64_t n = 0;
  for (const auto& p : row) n += store.targets(p.example, p.length);
  return n;
}

PackedBatch make_packed_batch(const ExampleStore& store, const std::vector<PackedRow>& rows, int64_t max_seq_len) {
  const int64_t B = static_cast<int64_t>(rows.size()), T = max_seq_len;
  auto ids = torch::zeros({B, T}, torch::kInt64);
  auto tgt = torch::full({B, T}, kIgnoreIndex, torch::kInt64);
  auto pos = torch::zeros({B, T}, torch::kInt64);
  auto doc = torch::full({B, T}, -1, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>(), tgt_a = tgt.accessor<int64_t, 2>();
  auto pos_a = pos.accessor<int64_t, 2>(), doc_a = doc.accessor<int64_t, 2>();
  PackedBatch mb;
  for (int64_t b = 0; b < B; ++b) {
    int64_t t = 0;
    for (size_t d = 0; d < rows[b].size(); ++d) {
      const auto& piece = rows[b][d];
      const int32_t* x = store.ids(piece.example);
      const int32_t* l = store.labels(piece.example);
      for (int64_t i = 0; i < piece.length; ++i, ++t) {
        ids_a[b][t] = x[i];
        pos_a[b][t] = i;
        doc_a[b][t] = static_cast<int64_t>(d);
        if (i + 1 < piece.length && l[i + 1] != kIgnoreIndex) {
          tgt_a[b][t] = l[i + 1];
          ++mb.num_targets;
        }
      }
    }
    mb.num_tokens += t;
    // Padding positions count from 0 like a document of their own (doc id -1).
    for (int64_t i = t; i < T; ++i) pos_a[b][i] = i - t;
  }
  mb.input_ids = ids;
  mb.targets = tgt;
  mb.position_ids = pos;
  mb.doc_ids = doc;
  return mb;
}

RowStream::RowStream(const ExampleStore& store, int64_t max_seq_len, std::string truncation, bool packing,
                     bool shuffle, uint64_t seed)
    : store_(store),
      max_seq_len_(max_seq_len),
      truncation_(std::move(truncation)),
      packing_(packing),
      shuffle_(shuffle),
      seed_(seed) {
  build_epoch();
  DIST_CHECK(!rows_.empty(), "data: every example is longer than data.max_seq_len=", max_seq_len_,
             " and data.truncation is 'drop'; nothing to train on");
}

void RowStream::build_epoch() {
  std::vector<uint32_t> order(store_.size());
  std::iota(order.begin(), order.end(), 0u);
  if (shuffle_) {
    std::mt19937_64 rng(seed_ * 1000003ull + static_cast<uint64_t>(epoch_));
    // Fisher-Yates with our own draws, so the order is the same with every standard library.
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  }
  stats_ = {};
  rows_ = pack_rows(store_, order, max_seq_len_, truncation_, packing_, &stats_);
}

std::vector<PackedRow> RowStream::take(int64_t n) {
  std::vector<PackedRow> out;
  out.reserve(n);
  while (static_cast<int64_t>(out.size()) < n) {
    if (pos_ >= static_cast<int64_t>(rows_.size())) {
      ++epoch_;
      pos_ = 0;
      build_epoch();
    }
    out.push_back(rows_[pos_++]);
  }
  return out;
}

void RowStream::seek(int64_t epoch, int64_t position) {
  if (epoch != epoch_) {
    epoch_ = epoch;
    build_epoch();
  }
  pos_ = position;
}

}  // namespace distillery
