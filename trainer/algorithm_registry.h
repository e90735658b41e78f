// The algorithms a run can name in `algorithm:`, each with its factory and its own recipe section.
// Algorithms register themselves (algorithms/registry.h); the trainer, the recipe (keys, defaults,
// validation, --dump-config, recipe-keys) and the CLI read them from here and name none of them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config_fields.h"
#include "trainer/algorithm.h"

namespace distillery {

// A recipe section whose struct an algorithm chooses: the declare-once machinery of
// common/config_fields.h reaches it through these virtual visits. Make one with section_of<S>().
class AlgorithmSection {
 public:
  virtual ~AlgorithmSection() = default;
  virtual void visit(config::YamlReader& v) = 0;
  virtual void visit(config::YamlWriter& v) = 0;
  virtual void visit(config::KeyLister& v) = 0;
  virtual void visit(config::PathCollector& v) = 0;
  virtual std::unique_ptr<AlgorithmSection> clone() const = 0;
  // The struct inside; S must be the type it was made with.
  template <class S>
  S& as();
};

template <class S>
class SectionOf final : public AlgorithmSection {
 public:
  S value;
  void visit(config::YamlReader& v) override { value.visit(v); }
  void visit(config::YamlWriter& v) override { value.visit(v); }
  void visit(config::KeyLister& v) override { value.visit(v); }
  void visit(config::PathCollector& v) override { value.visit(v); }
  std::unique_ptr<AlgorithmSection> clone() const override { return std::make_unique<SectionOf<S>>(*this); }
};

template <class S>
S& AlgorithmSection::as() {
  auto* typed = dynamic_cast<SectionOf<S>*>(this);
  if (!typed) throw std::logic_error("algorithm section holds another type");
  return typed->value;
}

struct AlgorithmSpec {
  std::string name;  // the value of `algorithm:` and the name of its recipe section
  std::string doc;   // one line for recipe-keys
  // Its recipe section `<name>:` with defaults (nullptr: the algorithm has no keys of its own).
  std::function<std::unique_ptr<AlgorithmSection>()> make_section;
  // Cross-key checks once the recipe is read: append "ORIGIN: key: problem" lines to `errors`.
  std::function<void(const RecipeConfig&, const std::string& origin, std::vector<std::string>& errors)> validate;
  std::function<std::unique_ptr<Algorithm>(AlgorithmContext&)> make;
};

class AlgorithmRegistry {
 public:
  static AlgorithmRegistry& instance();
  // A second algorithm with the same name is a programming error (std::logic_error).
  void add(AlgorithmSpec spec);
  // nullptr when no algorithm has that name.
  const AlgorithmSpec* find(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::map<std::string, AlgorithmSpec>& specs() const { return specs_; }

 private:
  std::map<std::string, AlgorithmSpec> specs_;
};

// The `<algorithm>:` sections of a recipe, one per registered algorithm that declares keys; each
// algorithm reads its own (RecipeConfig::algorithm_section<S>(name)).
class AlgorithmSections {
 public:
  AlgorithmSections();  // every registered algorithm's section, with its defaults
  AlgorithmSections(const AlgorithmSections& o);
  AlgorithmSections& operator=(const AlgorithmSections& o);
  AlgorithmSections(AlgorithmSections&&) = default;
  AlgorithmSections& operator=(AlgorithmSections&&) = default;

  template <class V>
  void visit(V& v) {
    for (auto& [name, section] : sections_) v.section(name.c_str(), *section, docs_.at(name).c_str());
  }
  AlgorithmSection* find(const std::string& name) const;

 private:
  std::map<std::string, std::unique_ptr<AlgorithmSection>> sections_;
  std::map<std::string, std::string> docs_;
};

}  // namespace distillery
