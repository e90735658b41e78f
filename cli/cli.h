// `distillery <command> ...`: parses, validates, builds, runs, returns an exit code.
// Exit codes: 0 ok, 1 internal error (a bug), 2 bad input (recipe, file, data, shape).
#pragma once

#include <string>
#include <vector>

namespace distillery {

int cli_main(int argc, char** argv);

// Subcommands, each `int (const std::vector<std::string>& args)`; args exclude the command name.
int cmd_train(const std::vector<std::string>& args);
int cmd_init_model(const std::vector<std::string>& args);
int cmd_make_data(const std::vector<std::string>& args);
int cmd_merge_lora(const std::vector<std::string>& args);
int cmd_tokenize(const std::vector<std::string>& args);

}  // namespace distillery
