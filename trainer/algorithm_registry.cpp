#include "trainer/algorithm_registry.h"

#include <stdexcept>

namespace distillery {

AlgorithmRegistry& AlgorithmRegistry::instance() {
  static AlgorithmRegistry registry;
  return registry;
}

void AlgorithmRegistry::add(AlgorithmSpec spec) {
  if (spec.name.empty() || !spec.make) throw std::logic_error("an algorithm needs a name and a factory");
  const std::string name = spec.name;
  if (!specs_.emplace(name, std::move(spec)).second) throw std::logic_error("algorithm '" + name + "' registered twice");
}

const AlgorithmSpec* AlgorithmRegistry::find(const std::string& name) const {
  auto it = specs_.find(name);
  return it == specs_.end() ? nullptr : &it->second;
}

std::vector<std::string> AlgorithmRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& kv : specs_) out.push_back(kv.first);
  return out;
}

AlgorithmSections::AlgorithmSections() {
  for (const auto& [name, spec] : AlgorithmRegistry::instance().specs()) {
    if (!spec.make_section) continue;
    sections_[name] = spec.make_section();
    docs_[name] = "the " + name + " algorithm's own keys (algorithm: " + name + "): " + spec.doc;
  }
}

AlgorithmSections::AlgorithmSections(const AlgorithmSections& o) : docs_(o.docs_) {
  for (const auto& [name, s] : o.sections_) sections_[name] = s->clone();
}

AlgorithmSections& AlgorithmSections::operator=(const AlgorithmSections& o) {
  if (this != &o) *this = AlgorithmSections(o);
  return *this;
}

AlgorithmSection* AlgorithmSections::find(const std::string& name) const {
  auto it = sections_.find(name);
  return it == sections_.end() ? nullptr : it->second.get();
}

}  // namespace distillery
