// `distillery generate`: sample completions for a JSONL file of prompts with a model dir (and
// optionally a PEFT adapter), on one process or under mpirun with any dp x tp x ep layout.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/text/chat_template.h"
#include "data/text/tokenizer.h"
#include "parallel/communicator.h"

namespace distillery {

// The prompt ids of one --input record: {"messages": [...]} rendered with `chat` and the
// generation prompt (a trailing assistant message, an eval set's reference answer, is dropped;
// objects keep the record's key order), or {"prompt": "..."} encoded with the tokenizer's special
// tokens, as transformers' tokenizer(prompt) adds them. Errors name `where` (file:line).
std::vector<int32_t> prompt_ids(const nlohmann::ordered_json& rec, const std::string& where, const text::Tokenizer& tok,
                                const text::ChatTemplate* chat, std::optional<bool> enable_thinking);

// argv after "generate". Every rank of `world` calls it; world rank 0 writes --output.
int run_generate_command(const std::vector<std::string>& argv, const std::shared_ptr<parallel::Communicator>& world);

const char* generate_command_usage();

}  // namespace distillery
