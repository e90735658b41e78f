// A recipe: the whole typed configuration of a run, one struct per YAML section.
#pragma once

#include <string>
#include <vector>

#include "models/peft/lora_config.h"
#include "data/data_config.h"
#include "parallel/parallel_config.h"
#include "models/model_section.h"
#include "models/moe_section.h"
#include "trainer/algorithm_registry.h"
#include "trainer/optim_config.h"
#include "trainer/trainer_config.h"

namespace distillery {

struct RecipeConfig {
  std::string algorithm = "sft";
  ModelSection model;
  DataConfig data;
  OptimConfig optim;
  TrainerConfig trainer;
  ParallelConfig parallel;
  LoraConfig lora;
  MoeSection moe;
  AlgorithmSections algorithms;  // `<algorithm>:` sections of the registered algorithms that have keys

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("algorithm", algorithm, "what the trainer optimizes (the registered algorithms)",
      one_of(AlgorithmRegistry::instance().names()));
    v.section("model", model, "the model being trained");
    v.section("data", data, "training and evaluation data");
    v.section("optim", optim, "optimizer and learning-rate schedule");
    v.section("trainer", trainer, "the training loop");
    v.section("parallel", parallel, "data parallelism over the ranks of mpirun / srun");
    v.section("lora", lora, "LoRA / DoRA adapters (PEFT's keys); off while r is 0 and no adapter is given");
    v.section("moe", moe, "router auxiliary losses of mixture-of-experts models");
    algorithms.visit(v);
  }

  // The `<name>:` section of algorithm `name`, as the struct S it registered.
  template <class S>
  S& algorithm_section(const std::string& name) const {
    AlgorithmSection* s = algorithms.find(name);
    if (!s) throw std::logic_error("algorithm '" + name + "' has no recipe section");
    return s->as<S>();
  }
};

// Reads `path`, applies `a.b.c=value` overrides, and validates. Every problem found is reported
// in one UserError, one line each, naming the file (or override) and the key path.
RecipeConfig load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});

// Same, from YAML text (`origin` names it in errors).
RecipeConfig parse_recipe(const std::string& yaml_text, const std::string& origin,
                          const std::vector<std::string>& overrides = {});

// The fully resolved recipe as YAML; with_docs adds each key's doc as a comment.
std::string dump_recipe(RecipeConfig cfg, bool with_docs = false);

// `path  default  rule  doc` for every key: the recipe reference.
std::string recipe_reference();

}  // namespace distillery
