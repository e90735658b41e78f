#include "cli/tokenize_command.h"

#include <charconv>
#include <istream>
#include <ostream>

#include <nlohmann/json.hpp>

#include <memory>

#include "data/text/chat_context.h"
#include "data/text/chat_template.h"
#include "data/text/tokenizer.h"
#include "common/error.h"

namespace distillery::text {

namespace tokenize_command_detail {

struct Options {
  std::string tokenizer_dir;
  bool add_special_tokens = false;
  bool chat = false;
};

Options parse_options(const std::vector<std::string>& args) {
  Options options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--tokenizer") {
      DIST_CHECK(i + 1 < args.size(), "tokenize: --tokenizer needs a directory (usage: ", tokenize_command_usage(), ")");
      options.tokenizer_dir = args[++i];
    } else if (a.rfind("--tokenizer=", 0) == 0) {
      options.tokenizer_dir = a.substr(12);
    } else if (a == "--add-special-tokens") {
      options.add_special_tokens = true;
    } else if (a == "--chat") {
      options.chat = true;
    } else {
      DIST_FAIL("tokenize: unknown argument '", a, "' (usage: ", tokenize_command_usage(), ")");
    }
  }
  DIST_CHECK(!options.tokenizer_dir.empty(), "tokenize: --tokenizer DIR is required (usage: ", tokenize_command_usage(), ")");
  return options;
}

nlohmann::ordered_json parse_line(const std::string& line, size_t number) {
  nlohmann::ordered_json row;
  try {
    row = nlohmann::ordered_json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann says "[json.exception.parse_error.101] parse error at line 1, column 7: ..."; the
    // line is ours to name, the column is worth keeping.
    std::string what = e.what();
    const auto column = what.find("column ");
    const auto colon = what.find(": ", column == std::string::npos ? 0 : column);
    if (column != std::string::npos && colon != std::string::npos) {
      DIST_FAIL("<stdin>:", number, ": invalid JSON at ", what.substr(column, colon - column), ": ", what.substr(colon + 2));
    }
    DIST_FAIL("<stdin>:", number, ": invalid JSON: ", what);
  }
  return row;
}

// The text of one input line, or a UserError naming the line.
std::string text_of_line(const std::string& line, size_t number) {
  const nlohmann::ordered_json row = parse_line(line, number);
  DIST_CHECK(row.is_object(), "<stdin>:", number, ": expected an object {\"text\": ...}");
  const auto it = row.find("text");
  DIST_CHECK(it != row.end(), "<stdin>:", number, ": missing \"text\"");
  DIST_CHECK(it->is_string(), "<stdin>:", number, ": \"text\" must be a string");
  return it->get<std::string>();
}

void append_ids_line(const std::vector<int32_t>& ids, std::string& out) {
  out += "{\"ids\": [";
  char buf[16];
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ", ";
    const auto r = std::to_chars(buf, buf + sizeof buf, ids[i]);
    out.append(buf, r.ptr);
  }
  out += "]}\n";
}

// --chat: {"messages": [...], "add_generation_prompt": bool, "enable_thinking"?: bool} rendered with
// the tokenizer's chat template, as transformers' apply_chat_template(tokenize=True) does.
void append_chat_line(const Tokenizer& tok, const ChatTemplate& tmpl, const std::string& line, size_t number,
                      std::string& out) {
  const nlohmann::ordered_json row = parse_line(line, number);
  DIST_CHECK(row.is_object() && row.contains("messages") && row["messages"].is_array(), "<stdin>:", number,
             ": expected an object {\"messages\": [...]}");
  bool add_generation_prompt = false;
  if (row.contains("add_generation_prompt")) {
    DIST_CHECK(row["add_generation_prompt"].is_boolean(), "<stdin>:", number, ": add_generation_prompt must be a bool");
    add_generation_prompt = row["add_generation_prompt"].get<bool>();
  }
  std::optional<bool> thinking;
  if (row.contains("enable_thinking")) {
    DIST_CHECK(row["enable_thinking"].is_boolean(), "<stdin>:", number, ": enable_thinking must be a bool");
    thinking = row["enable_thinking"].get<bool>();
  }
  const auto ctx = chat_template_context(tok, row["messages"], add_generation_prompt, thinking);
  std::string text;
  try {
    text = tmpl.render(ctx);
  } catch (const UserError& e) {
    DIST_FAIL("<stdin>:", number, ": ", e.what());
  }
  nlohmann::ordered_json result;
  result["text"] = text;
  result["ids"] = tok.encode(text, /*add_special_tokens=*/false);
  out += result.dump() + "\n";
}

}  // namespace tokenize_command_detail

const char* tokenize_command_usage() {
  return "distillery tokenize --tokenizer DIR [--add-special-tokens | --chat] < in.jsonl > out.jsonl";
}

int run_tokenize_command(const std::vector<std::string>& args, std::istream& in, std::ostream& out) {
  namespace d = tokenize_command_detail;
  const d::Options options = d::parse_options(args);
  const Tokenizer tokenizer = Tokenizer::load(options.tokenizer_dir);
  std::unique_ptr<ChatTemplate> tmpl;
  if (options.chat) tmpl = std::make_unique<ChatTemplate>(load_chat_template(options.tokenizer_dir));
  std::string line, buffer;
  std::vector<int32_t> ids;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (tmpl) {
      d::append_chat_line(tokenizer, *tmpl, line, number, buffer);
    } else {
      const std::string text = d::text_of_line(line, number);
      ids.clear();
      tokenizer.encode_into(text, ids, options.add_special_tokens);
      d::append_ids_line(ids, buffer);
    }
    if (buffer.size() > (1 << 16)) {
      out << buffer;
      buffer.clear();
    }
  }
  out << buffer;
  out.flush();
  return 0;
}

}  // namespace distillery::text
