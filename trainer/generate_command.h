// `distillery generate`: sample completions for a JSONL file of prompts with a model dir (and
// optionally a PEFT adapter), on one process or under mpirun with any dp x tp x ep layout.
#pragma once

#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace distillery {

// argv after "generate". Every rank of `world` calls it; world rank 0 writes --output.
int run_generate_command(const std::vector<std::string>& argv, const std::shared_ptr<parallel::Communicator>& world);

const char* generate_command_usage();

}  // namespace distillery
