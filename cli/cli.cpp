#include "algorithms/registry.h"
#include "cli/cli.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "models/peft/merge.h"
#include "data/synthetic.h"
#include "cli/tokenize_command.h"
#include "parallel/runtime.h"
#include "cli/cli_args.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "cli/generate_command.h"
#include "models/hf_model.h"
#include "trainer/loop.h"
#include "trainer/recipe.h"
#include "trainer/signals.h"

namespace distillery {
namespace fs = std::filesystem;

namespace {

const char* kUsage =
    "usage: distillery <command> [args]\n"
    "  train RECIPE.yaml [a.b=value ...]        run a recipe\n"
    "  train --dump-config RECIPE.yaml [...]    print the fully resolved recipe\n"
    "  recipe-keys                              every recipe key with its default and meaning\n"
    "  init-model --config config.json --out DIR [--seed N] [--dtype fp32|bf16] [--tokenizer DIR] [--overwrite]\n"
    "                                           write a random-init Hugging Face model dir (an existing\n"
    "                                           non-empty DIR only with --overwrite)\n"
    "  tokenize --tokenizer DIR [--add-special-tokens | --chat] < in.jsonl > out.jsonl\n"
    "                                           {\"text\"} -> {\"ids\"}; --chat: {\"messages\"} -> {\"text\", \"ids\"}\n"
    "  make-data TASK --out FILE [--n N] [--digits D] [--seed S] [--format text|messages|tokenized]\n"
    "                                           synthetic verifiable tasks (arithmetic, countdown)\n"
    "  merge-lora --base DIR --adapter DIR --out DIR [--dtype fp32|bf16|fp16] [--overwrite]\n"
    "                                           fold a PEFT LoRA/DoRA adapter into its base model\n";

std::string usage() { return std::string(kUsage) + generate_command_usage(); }

}  // namespace

int cmd_train(const std::vector<std::string>& argv) {
  install_stop_handlers();  // from the first instant: a signal during start-up must not kill the run unannounced
  Args a = parse_args("train", argv, {}, {"--dump-config"});
  DIST_CHECK(!a.positional.empty(), "distillery train: missing RECIPE.yaml");
  const std::string recipe = a.positional[0];
  std::vector<std::string> overrides(a.positional.begin() + 1, a.positional.end());
  RecipeConfig cfg = load_recipe(recipe, overrides);
  if (a.flags.count("--dump-config")) {
    std::cout << dump_recipe(cfg);
    return 0;
  }
  Trainer trainer(cfg, parallel::Runtime::get().world);
  auto r = trainer.run();
  return r.steps_done >= 0 ? 0 : 1;
}

int cmd_init_model(const std::vector<std::string>& argv) {
  Args a = parse_args("init-model", argv, {"--config", "--out", "--seed", "--dtype", "--tokenizer"}, {"--overwrite"});
  const std::string config_path = a.need("init-model", "--config");
  const std::string out = a.need("init-model", "--out");
  std::vector<std::pair<std::string, std::string>> inputs{{"--config", config_path}};
  if (a.flags.count("--tokenizer")) inputs.emplace_back("--tokenizer", a.get("--tokenizer"));
  check_output_dir(out, a.flags.count("--overwrite") > 0, inputs);
  const torch::Dtype dtype = parse_dtype(a.get("--dtype", "fp32"));
  auto cfg = TransformerConfig::from_json(read_json_file(config_path), config_path);
  CausalLM model(cfg);
  model->init_weights(static_cast<uint64_t>(a.integer("--seed", 0)));
  // Side files (tokenizer, generation config) are carried from --tokenizer, else from next to config.json.
  const std::string side = a.get("--tokenizer", fs::path(config_path).parent_path().string());
  if (a.flags.count("--tokenizer"))
    DIST_CHECK(fs::exists(fs::path(side) / "tokenizer.json"), side, "/tokenizer.json: not found");
  save_hf_model(model, out, side, dtype, int64_t{5} << 30);
  int64_t n = 0;
  for (auto& p : model->parameters()) n += p.numel();
  std::cerr << "[distillery] wrote " << out << " (" << cfg.model_type << ", " << n << " parameters)\n";
  return 0;
}

int cmd_make_data(const std::vector<std::string>& argv) {
  Args a = parse_args("make-data", argv, {"--out", "--n", "--digits", "--seed", "--format"});
  DIST_CHECK(a.positional.size() == 1, "distillery make-data: expected one TASK (arithmetic, countdown)");
  const std::string task = a.positional[0], out = a.need("make-data", "--out");
  const std::string format = a.get("--format", "text");
  DIST_CHECK(format == "text" || format == "messages" || format == "tokenized",
             "distillery make-data: --format: expected text, messages or tokenized, got '", format, "'");
  DIST_CHECK(task == "arithmetic" || task == "countdown", "distillery make-data: unknown task '", task,
             "' (arithmetic, countdown)");
  const int64_t n = a.integer("--n", 1000), digits = a.integer("--digits", 2);
  DIST_CHECK(n >= 1, "distillery make-data: --n must be >= 1, got ", n);
  DIST_CHECK(digits >= 1, "distillery make-data: --digits must be >= 1, got ", digits);
  auto records = make_task(task, n, digits, a.integer("--seed", 0));
  std::string text;
  for (const auto& r : records) {
    nlohmann::json j;
    if (format == "text") {
      j = {{"prompt", r.prompt}, {"completion", r.completion}, {"answer", r.answer}};
    } else if (format == "messages") {
      j = {{"messages", {{{"role", "user"}, {"content", r.prompt.substr(0, r.prompt.find_last_not_of(" ") + 1)}}, {{"role", "assistant"}, {"content", r.completion}}}},
           {"answer", r.answer}};
    } else {
      j = byte_level_tokenized(r);
    }
    text += j.dump() + "\n";
  }
  if (!fs::path(out).parent_path().empty()) fs::create_directories(fs::path(out).parent_path());
  write_text_file(out, text);
  std::cerr << "[distillery] wrote " << records.size() << " " << task << " records to " << out << "\n";
  return 0;
}

int cmd_merge_lora(const std::vector<std::string>& argv) {
  Args a = parse_args("merge-lora", argv, {"--base", "--adapter", "--out", "--dtype", "--max-shard-size-mb"},
                     {"--overwrite"});
  DIST_CHECK(a.positional.empty(), "distillery merge-lora: unexpected argument '",
             a.positional.empty() ? "" : a.positional[0], "'");
  const std::string base = a.need("merge-lora", "--base"), adapter = a.need("merge-lora", "--adapter");
  const std::string out = a.need("merge-lora", "--out");
  DIST_CHECK(fs::is_directory(base), "merge-lora --base ", base, ": not a directory");
  check_output_dir(out, a.flags.count("--overwrite") > 0, {{"--base", base}, {"--adapter", adapter}});
  std::optional<torch::Dtype> dtype;
  if (a.flags.count("--dtype")) dtype = parse_dtype(a.get("--dtype"));
  merge_lora_dirs(base, adapter, out, dtype, a.integer("--max-shard-size-mb", 5000) * (int64_t{1} << 20));
  std::cerr << "[distillery] wrote " << out << " (" << base << " + " << adapter << ")\n";
  return 0;
}

int cli_main(int argc, char** argv) {
  register_algorithms();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::cout << usage();
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  // Under mpirun/srun every rank runs this; an error on any rank ends all of them (MPI_Abort), so
  // a run never hangs in a collective that a dead rank will not join.
  parallel::Runtime* runtime = nullptr;
  try {
    runtime = &parallel::Runtime::init(&argc, &argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  auto& rt = *runtime;
  auto fail = [&rt](int code) {
    if (rt.world_size > 1) rt.abort_all(code);
    return code;
  };
  try {
    int code = 2;
    if (cmd == "train") code = cmd_train(rest);
    else if (cmd == "init-model") code = cmd_init_model(rest);
    else if (cmd == "make-data") code = cmd_make_data(rest);
    else if (cmd == "merge-lora") code = cmd_merge_lora(rest);
    else if (cmd == "generate") code = run_generate_command(rest, rt.world);
    else if (cmd == "tokenize") code = text::run_tokenize_command(rest, std::cin, std::cout);
    else if (cmd == "recipe-keys") std::cout << recipe_reference(), code = 0;
    else std::cerr << "error: unknown command '" << cmd << "' (see distillery --help)\n";
    if (code != 0) return fail(code);
    rt.finalize();
    return 0;
  } catch (const UserError& e) {
    std::cerr << rt.rank_tag() << "error: " << e.what() << "\n";
    return fail(2);
  } catch (const fs::filesystem_error& e) {
    // The environment, not a bug: name the path and the OS reason (No space left on device, ...).
    std::cerr << rt.rank_tag() << "error: " << (e.path1().empty() ? std::string("filesystem") : e.path1().string())
              << ": " << e.code().message() << "\n";
    return fail(2);
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::cerr << rt.rank_tag() << "internal error: " << what.substr(0, what.find('\n')) << "\n";
    return fail(1);
  }
}

}  // namespace distillery
