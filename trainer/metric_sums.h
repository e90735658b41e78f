// Named sums (a step's metrics, an evaluation's totals), reduced across ranks by name.
#pragma once

#include <map>
#include <string>

#include "parallel/communicator.h"

namespace distillery {

class MetricSums {
 public:
  // values[name] += value.
  void add(const std::string& name, double value) { values_[name] += value; }
  double get(const std::string& name, double fallback = 0) const;
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  const std::map<std::string, double>& values() const { return values_; }

  // Sums every rank's values over `comm`, by name: afterwards each rank holds every name any rank
  // had, with the sum over the ranks that had it (a name missing on a rank counts as 0 there).
  // Collective: every rank of `comm` calls it, whatever names it holds, even none. Three collectives
  // (name lengths, names, values), all of fixed size per rank.
  void allreduce(parallel::Communicator& comm);

 private:
  std::map<std::string, double> values_;
};

}  // namespace distillery
