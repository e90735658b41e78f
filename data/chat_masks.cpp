#include "data/chat_masks.h"

#include "data/text/chat_context.h"

#include "trainer/error.h"
#include "trainer/losses.h"

namespace distillery {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

std::string rstrip_whitespace(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s;
}

// The visible answer of an assistant message: content after any <think>...</think> block, trimmed.
std::string final_content(const nlohmann::ordered_json& msg) {
  if (!msg.contains("content") || !msg["content"].is_string()) return "";
  std::string c = msg["content"].get<std::string>();
  const auto think_end = c.rfind("</think>");
  if (think_end != std::string::npos) c = c.substr(think_end + 8);
  const auto b = c.find_first_not_of(" \n\t\r");
  if (b == std::string::npos) return "";
  return rstrip_whitespace(c.substr(b));
}

}  // namespace

nlohmann::ordered_json chat_context(const text::Tokenizer& tok, const nlohmann::ordered_json& messages,
                                    bool add_generation_prompt, const ChatOptions& opts) {
  std::optional<bool> thinking;
  if (opts.enable_thinking != "default") thinking = opts.enable_thinking == "true";
  return text::chat_template_context(tok, messages, add_generation_prompt, thinking);
}

ChatRendering render_chat(const text::ChatTemplate& tmpl, const text::Tokenizer& tok,
                          const nlohmann::ordered_json& messages, const ChatOptions& opts, const std::string& where) {
  DIST_CHECK(messages.is_array() && !messages.empty(), where, ": 'messages' must be a non-empty list");
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    DIST_CHECK(m.is_object() && m.contains("role") && m["role"].is_string(), where, ": messages[", i,
               "] needs a string 'role'");
    const std::string role = m["role"].get<std::string>();
    DIST_CHECK(role == "system" || role == "user" || role == "assistant" || role == "tool", where, ": messages[", i,
               "].role '", role, "' is not one of system, user, assistant, tool");
    DIST_CHECK(m.contains("content") && (m["content"].is_string() || m["content"].is_null()), where, ": messages[",
               i, "] needs a string 'content'");
  }
  ChatRendering out;
  try {
    out.text = tmpl.render(chat_context(tok, messages, false, opts));
  } catch (const UserError& e) {
    DIST_FAIL(where, ": ", e.what());
  }
  size_t cursor = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i]["role"] != "assistant") continue;
    nlohmann::ordered_json head(nlohmann::ordered_json::value_t::array), upto(nlohmann::ordered_json::value_t::array);
    for (size_t k = 0; k < i; ++k) head.push_back(messages[k]);
    upto = head;
    upto.push_back(messages[i]);
    const std::string prefix = tmpl.render(chat_context(tok, head, true, opts));
    const std::string full = tmpl.render(chat_context(tok, upto, false, opts));
    // The assistant block as the template renders it when this turn is the last one.
    std::string block = starts_with(full, prefix) ? rstrip_whitespace(full.substr(prefix.size())) : "";
    size_t at = block.empty() ? std::string::npos : out.text.find(block, cursor);
    if (at != std::string::npos) {
      out.assistant.emplace_back(at, at + block.size());
      cursor = at + block.size();
      continue;
    }
    // Templates that rewrite earlier turns (Qwen3 drops the reasoning of turns before the last
    // user message): find the visible answer and the end-of-turn text the block closes with.
    const std::string answer = final_content(messages[i]);
    DIST_CHECK(!answer.empty(), where, ": could not locate assistant messages[", i, "] in the rendered template");
    std::string tail;
    if (!block.empty()) {
      const auto p = block.rfind(answer);
      if (p != std::string::npos) tail = block.substr(p + answer.size());
    }
    at = out.text.find(answer + tail, cursor);
    DIST_CHECK(at != std::string::npos, where, ": could not locate assistant messages[", i,
               "] in the rendered template");
    out.assistant.emplace_back(at, at + answer.size() + tail.size());
    cursor = at + answer.size() + tail.size();
  }
  return out;
}

void tokenize_with_spans(const text::Tokenizer& tok, const std::string& text,
                         const std::vector<std::pair<size_t, size_t>>& spans, bool train_all,
                         std::vector<int32_t>* ids, std::vector<int32_t>* labels) {
  *ids = tok.encode(text, /*add_special_tokens=*/false);
  labels->assign(ids->size(), static_cast<int32_t>(kIgnoreIndex));
  size_t offset = 0, span = 0;
  for (size_t t = 0; t < ids->size(); ++t) {
    // Added tokens with lstrip/rstrip also swallow whitespace next to them: look the bytes up.
    const std::string bytes = tok.token_bytes((*ids)[t]);
    const size_t begin = text.compare(offset, bytes.size(), bytes) == 0 ? offset : text.find(bytes, offset);
    DIST_ASSERT(begin != std::string::npos, "token ", (*ids)[t], " not found in the text it was encoded from");
    offset = begin + bytes.size();
    while (span < spans.size() && spans[span].second <= begin) ++span;
    const bool inside = span < spans.size() && begin >= spans[span].first && begin < spans[span].second;
    if (train_all || inside) (*labels)[t] = (*ids)[t];
  }
}

}  // namespace distillery
