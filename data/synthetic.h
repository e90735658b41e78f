// Synthetic, verifiable tasks made by the project (no downloads): multi-digit arithmetic and
// countdown. Each record has the prompt, the completion and the ground-truth answer, so SFT,
// distillation and GRPO (as a reward) can all use them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace distillery {

struct TaskRecord {
  std::string prompt;      // "What is 47+85? "
  std::string completion;  // "132"
  std::string answer;      // "132": what a verifier compares against
};

// task: "arithmetic" (a+b, a-b, a*b with `digits`-digit operands) or "countdown" (reach a target
// from `digits`+1 numbers with + - *; the completion is one valid expression).
std::vector<TaskRecord> make_task(const std::string& task, int64_t n, int64_t digits, uint64_t seed);

// The record in the `tokenized` data format with byte-level ids (vocab 256):
// {"input_ids": [...], "labels": [...]}, the prompt as context (label -100), the completion and a
// '\n' end trained.
nlohmann::json byte_level_tokenized(const TaskRecord& rec);

// True when `completion` (its first number, or for countdown its expression) is correct.
bool verify_task_answer(const std::string& task, const TaskRecord& rec, const std::string& completion);

}  // namespace distillery
