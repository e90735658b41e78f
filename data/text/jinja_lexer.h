// Tokenizer of the chat-template interpreter, with jinja2's whitespace rules as transformers
// configures them: trim_blocks (a block or comment tag eats the one newline after it),
// lstrip_blocks (a block or comment tag alone on its line eats the indentation before it),
// `-` markers that strip all whitespace on that side, `+` markers that disable both, and the
// template's final newline dropped (keep_trailing_newline=False). `\r\n` and `\r` read as `\n`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace distillery::text::jinja {

enum class TokenType {
  Data,        // literal text between tags (raw blocks included)
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,      // text is the decoded value
  Integer,     // text is the literal with '_' separators removed
  Float,
  Operator,
  End,
};

struct Token {
  TokenType type;
  std::string text;
  int line;
};

// Throws TemplateError (with the line) for an unterminated tag, comment or string, or an
// unexpected character inside a tag.
std::vector<Token> tokenize(std::string_view source);

}  // namespace distillery::text::jinja
