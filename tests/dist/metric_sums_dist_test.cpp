// MetricSums::allreduce sums by name whatever names each rank holds: a metric only some ranks
// report neither mis-sums nor hangs.
#include <gtest/gtest.h>

#include "parallel/runtime.h"
#include "trainer/metric_sums.h"

using namespace distillery;

TEST(MetricSums, ReduceByNameWhenRanksHoldDifferentNames) {
  auto world = parallel::Runtime::get().world;
  const int n = world->size(), r = world->rank();
  MetricSums s;
  // The last rank reports nothing at all; rank 0 alone reports "only_first"; every other rank
  // reports "common" = rank + 1 and its own "rank_<r>".
  if (r != n - 1) {
    s.add("common", r + 1);
    s.add("rank_" + std::to_string(r), 10.0 * r);
  }
  if (r == 0) s.add("only_first", 5);
  s.allreduce(*world);
  double common = 0;
  for (int k = 0; k < n - 1; ++k) common += k + 1;
  EXPECT_EQ(s.get("common", -1), common);
  EXPECT_EQ(s.get("only_first", -1), 5);
  for (int k = 0; k < n - 1; ++k) EXPECT_EQ(s.get("rank_" + std::to_string(k), -1), 10.0 * k) << k;
  EXPECT_FALSE(s.has("rank_" + std::to_string(n - 1)));
  EXPECT_EQ(s.values().size(), static_cast<size_t>(n - 1 + 2));
  // Nobody holds a name: nothing to sum, no hang.
  MetricSums none;
  none.allreduce(*world);
  EXPECT_TRUE(none.values().empty());
}
