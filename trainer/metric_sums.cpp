#include "trainer/metric_sums.h"

#include <set>

namespace distillery {

double MetricSums::get(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

void MetricSums::allreduce(parallel::Communicator& comm) {
  if (comm.size() == 1) return;
  // 1. The union of names: every rank's names, '\n'-joined, padded to the longest list and gathered.
  std::string mine;
  for (const auto& kv : values_) mine += kv.first + "\n";
  auto len = torch::tensor({static_cast<int64_t>(mine.size())}, torch::kInt64);
  comm.allreduce(len, parallel::ReduceOp::kMax);
  const int64_t width = len.item<int64_t>();
  std::set<std::string> names;
  for (const auto& kv : values_) names.insert(kv.first);
  if (width > 0) {
    auto bytes = torch::zeros({1, width}, torch::kInt64);
    for (size_t i = 0; i < mine.size(); ++i) bytes[0][static_cast<int64_t>(i)] = static_cast<unsigned char>(mine[i]);
    auto all = comm.allgather(bytes).contiguous();  // [ranks, width]
    const int64_t* p = all.data_ptr<int64_t>();
    for (int64_t r = 0; r < all.size(0); ++r) {
      std::string name;
      for (int64_t i = 0; i < width; ++i) {
        const char c = static_cast<char>(p[r * width + i]);
        if (c == '\n') names.insert(name), name.clear();
        else if (c != 0) name += c;
      }
    }
  }
  // 2. The values, in the sorted union's order (the same on every rank).
  std::vector<double> v;
  for (const auto& n : names) v.push_back(get(n));
  auto t = torch::tensor(v, torch::kFloat64);
  if (!v.empty()) comm.allreduce(t);
  size_t i = 0;
  for (const auto& n : names) values_[n] = t[static_cast<int64_t>(i++)].item<double>();
}

}  // namespace distillery
