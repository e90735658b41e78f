// A recipe: the whole typed configuration of a run, one struct per YAML section.
#pragma once

#include <string>
#include <vector>

#include "algorithms/lora/lora_config.h"
#include "data/data_config.h"
#include "parallel/parallel_config.h"
#include "trainer/model_section.h"
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

  template <class V>
  void visit(V& v) {
    using namespace config;
    v("algorithm", algorithm, "what the trainer optimizes", one_of({"sft"}));
    v.section("model", model, "the model being trained");
    v.section("data", data, "training and evaluation data");
    v.section("optim", optim, "optimizer and learning-rate schedule");
    v.section("trainer", trainer, "the training loop");
    v.section("parallel", parallel, "data parallelism over the ranks of mpirun / srun");
    v.section("lora", lora, "LoRA / DoRA adapters (PEFT's keys); off while r is 0 and no adapter is given");
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
