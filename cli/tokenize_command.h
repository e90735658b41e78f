// `distillery tokenize`: JSONL text in, token ids out.
//
//   distillery tokenize --tokenizer DIR [--add-special-tokens] < in.jsonl > out.jsonl
//
// Each input line {"text": "..."} becomes {"ids": [...]} on the same output line. Without
// --add-special-tokens nothing is added around the text (as in encode()). A malformed line is a
// UserError "<stdin>:LINE: ..." and stops the command.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace distillery::text {

// `args` excludes the command name. Returns the exit code (0); bad usage or input throws
// UserError.
int run_tokenize_command(const std::vector<std::string>& args, std::istream& in, std::ostream& out);

// One line of usage, for the CLI's help.
const char* tokenize_command_usage();

}  // namespace distillery::text
