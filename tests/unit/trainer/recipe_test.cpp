#include <gtest/gtest.h>

#include "common/error.h"
#include "trainer/recipe.h"

using distillery::parse_recipe;
using distillery::RecipeConfig;
using distillery::UserError;

namespace {

const char* kValid = R"(
algorithm: sft
model:
  path: /models/tiny
data:
  train: train.jsonl
optim:
  lr: 3.0e-4
trainer:
  output_dir: runs/a
  max_steps: 10
)";

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_recipe(yaml, "recipe.yaml", overrides);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Recipe, ParsesTypedValuesAndKeepsDefaults) {
  RecipeConfig c = parse_recipe(kValid, "recipe.yaml");
  EXPECT_EQ(c.model.path, "/models/tiny");
  EXPECT_DOUBLE_EQ(c.optim.lr, 3e-4);
  EXPECT_EQ(c.trainer.max_steps, 10);
  EXPECT_EQ(c.optim.lr_schedule, "cosine");
  EXPECT_EQ(c.data.max_seq_len, 512);
}

TEST(Recipe, UnknownKeyNamesPathAndClosestMatch) {
  std::string yaml = std::string(kValid) + "\n";
  yaml.replace(yaml.find("  lr: 3.0e-4"), 12, "  lr_shedule: cosine");
  EXPECT_EQ(error_of(yaml), "recipe.yaml:8: unknown key 'optim.lr_shedule' (did you mean 'optim.lr_schedule'?)");
}

TEST(Recipe, UnknownSectionSuggestsSection) {
  EXPECT_NE(error_of(std::string(kValid) + "optimm:\n  lr: 1\n").find("unknown key 'optimm' (did you mean 'optim'?)"),
            std::string::npos);
}

TEST(Recipe, WrongTypeNamesKeyLineAndValue) {
  std::string yaml = kValid;
  yaml.replace(yaml.find("3.0e-4"), 6, "fast");
  EXPECT_EQ(error_of(yaml), "recipe.yaml:8: optim.lr: expected a number, got 'fast'");
}

TEST(Recipe, OutOfRangeNamesRange) {
  EXPECT_EQ(error_of(kValid, {"optim.lr=-1"}),
            "override 'optim.lr=-1': optim.lr=-1 is out of range (must be > 0)");
  EXPECT_EQ(error_of(kValid, {"optim.lr_schedule=cosin"}),
            "override 'optim.lr_schedule=cosin': optim.lr_schedule: 'cosin' is not one of cosine|linear|constant "
            "(did you mean 'cosine'?)");
}

TEST(Recipe, MissingRequiredKeyIsNamed) {
  std::string yaml = kValid;
  yaml.erase(yaml.find("  max_steps: 10"), 15);
  EXPECT_EQ(error_of(yaml), "recipe.yaml: missing required key 'trainer.max_steps'");
}

TEST(Recipe, ReportsEveryProblemAtOnce) {
  std::string e = error_of(kValid, {"optim.lr=x", "trainer.max_stepz=3"});
  EXPECT_NE(e.find("optim.lr: expected a number"), std::string::npos);
  EXPECT_NE(e.find("unknown key 'trainer.max_stepz' (did you mean 'trainer.max_steps'?)"), std::string::npos);
}

TEST(Recipe, MalformedYamlNamesLine) {
  std::string e = error_of("model:\n  path: [a, b\ndata: x\n");
  EXPECT_EQ(e.rfind("recipe.yaml:", 0), 0u);
  EXPECT_NE(e.find("malformed YAML"), std::string::npos);
}

TEST(Recipe, OverridesApplyToNestedKeys) {
  RecipeConfig c = parse_recipe(kValid, "recipe.yaml", {"optim.lr=3e-5", "trainer.max_steps=100", "data.eval=e.jsonl"});
  EXPECT_DOUBLE_EQ(c.optim.lr, 3e-5);
  EXPECT_EQ(c.trainer.max_steps, 100);
  EXPECT_EQ(c.data.eval, "e.jsonl");
  EXPECT_NE(error_of(kValid, {"optim.lr"}).find("expected key.path=value"), std::string::npos);
}

TEST(Recipe, DumpRoundTripsToTheSameConfig) {
  RecipeConfig a = parse_recipe(kValid, "recipe.yaml", {"optim.warmup_steps=3", "data.shuffle=false"});
  const std::string dumped = distillery::dump_recipe(a, /*with_docs=*/true);
  RecipeConfig b = parse_recipe(dumped, "dumped.yaml");
  EXPECT_EQ(distillery::dump_recipe(b), distillery::dump_recipe(a));
  EXPECT_EQ(b.optim.warmup_steps, 3);
  EXPECT_FALSE(b.data.shuffle);
  EXPECT_NE(dumped.find("# peak learning rate"), std::string::npos);
}

TEST(Recipe, CrossFieldCheckNamesBothKeys) {
  EXPECT_EQ(error_of(kValid, {"optim.warmup_steps=20"}),
            "recipe.yaml: optim.warmup_steps=20 exceeds trainer.max_steps=10");
}

TEST(Recipe, EvalWithoutEvalDataNamesBothKeys) {
  EXPECT_EQ(error_of(kValid, {"trainer.eval_every=5"}),
            "recipe.yaml: trainer.eval_every=5 asks for evaluation but data.eval is not set");
  EXPECT_EQ(error_of(kValid, {"trainer.eval_every=5", "data.eval=eval.jsonl"}), "");
}

TEST(Recipe, DuplicateKeyNamesBothLines) {
  const std::string yaml = std::string(kValid) + "  max_steps: 20\n";  // line 12 repeats line 11
  EXPECT_EQ(error_of(yaml), "recipe.yaml:12: duplicate key 'trainer.max_steps' (first at line 11)");
  EXPECT_EQ(error_of("model: {path: /m, path: /n}\n"), "recipe.yaml:1: duplicate key 'model.path' (first at line 1)");
}

#include <filesystem>
#include <fstream>
#include <sstream>

TEST(Recipes, EveryRecipeInTheRepositoryLoadsAndValidates) {
  int n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(DISTILLERY_SOURCE_DIR "/recipes")) {
    if (e.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(distillery::load_recipe(e.path().string())) << e.path();
    std::ifstream in(e.path());
    std::string first;
    std::getline(in, first);
    EXPECT_EQ(first.rfind("#", 0), 0u) << e.path() << " must start with a comment giving its command";
    ++n;
  }
  EXPECT_GE(n, 1);
}

TEST(Recipes, ReferenceDocMatchesTheDeclaredKeys) {
  std::ifstream in(DISTILLERY_SOURCE_DIR "/docs/recipes.md");
  std::stringstream s;
  s << in.rdbuf();
  const std::string doc = s.str();
  const std::string begin = "```text\n", end = "```\n";
  const auto b = doc.find(begin);
  ASSERT_NE(b, std::string::npos);
  const auto e = doc.find(end, b + begin.size());
  EXPECT_EQ(doc.substr(b + begin.size(), e - b - begin.size()), distillery::recipe_reference())
      << "regenerate with: build/bin/distillery recipe-keys (see docs/recipes.md)";
}
