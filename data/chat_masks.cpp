#include "data/chat_masks.h"

#include <algorithm>

#include "data/text/chat_context.h"

#include "common/error.h"
#include "common/ignore_index.h"

namespace distillery {
namespace {

size_t rstrip_end(const std::string& s) {
  size_t e = s.size();
  while (e > 0 && (s[e - 1] == '\n' || s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return e;
}

size_t common_prefix(const std::string& a, const std::string& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

bool same_prefix(const std::string& a, const std::string& b, size_t n) {
  return a.size() >= n && b.size() >= n && a.compare(0, n, b, 0, n) == 0;
}

void check_messages(const nlohmann::ordered_json& messages, const std::string& where) {
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
}

// Whether text[0, at) ends with one of `specials`.
bool ends_with_any(const std::vector<std::string>& specials, const std::string& text, size_t at) {
  for (const std::string& s : specials)
    if (s.size() <= at && text.compare(at - s.size(), s.size(), s) == 0) return true;
  return false;
}

// One assistant turn as the template renders it when the turn is the conversation's last message:
// `prefix` = messages[:i] with the generation prompt, `alone` = messages[:i+1] without it. The
// turn's text is alone[begin, end): what it adds after the part it shares with the prompt (a
// generation prompt that opens a block, e.g. "<think>\n", is the model's input, not its output),
// without trailing whitespace after the end-of-turn token.
struct TurnRender {
  size_t index = 0;
  std::string alone;
  size_t begin = 0, end = 0;
};

}  // namespace

nlohmann::ordered_json chat_context(const text::Tokenizer& tok, const nlohmann::ordered_json& messages,
                                    bool add_generation_prompt, const ChatOptions& opts) {
  std::optional<bool> thinking;
  if (opts.enable_thinking != "default") thinking = opts.enable_thinking == "true";
  return text::chat_template_context(tok, messages, add_generation_prompt, thinking);
}

ChatRendering render_chat(const text::ChatTemplate& tmpl, const text::Tokenizer& tok,
                          const nlohmann::ordered_json& messages, const ChatOptions& opts, const std::string& where) {
  check_messages(messages, where);
  auto render = [&](const nlohmann::ordered_json& msgs, bool add_generation_prompt) {
    try {
      return tmpl.render_tracked(chat_context(tok, msgs, add_generation_prompt, opts));
    } catch (const UserError& e) {
      DIST_FAIL(where, ": ", e.what());
    }
  };
  auto full = render(messages, false);
  ChatRendering out;
  out.text = std::move(full.text);
  if (tmpl.has_generation_blocks()) {  // the template marks its own trained text
    for (const auto& span : full.generation)
      if (span.second > span.first) out.assistant.push_back(span);
    return out;
  }

  std::vector<TurnRender> turns;
  nlohmann::ordered_json head(nlohmann::ordered_json::value_t::array);
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i]["role"] == "assistant") {
      TurnRender t;
      t.index = i;
      const std::string prefix = render(head, true).text;
      head.push_back(messages[i]);
      t.alone = render(head, false).text;
      t.begin = common_prefix(prefix, t.alone);
      t.end = rstrip_end(t.alone);
      DIST_CHECK(t.end > t.begin, where, ": assistant messages[", i, "] adds no text to the rendered conversation");
      turns.push_back(std::move(t));
    } else {
      head.push_back(messages[i]);
    }
  }

  const std::string& text = out.text;
  for (size_t k = 0; k < turns.size(); ++k) {
    const TurnRender& t = turns[k];
    std::pair<size_t, size_t> span{t.begin, t.end};
    if (!same_prefix(text, t.alone, t.end)) {
      // The template renders this turn differently once later messages follow (Qwen3 drops the
      // reasoning of turns before the last user message). Rule: train the turn as the final
      // conversation renders it, through its end-of-turn token.
      // It starts where the conversation and the turn's own render part (a generation prompt that
      // opens a block the history form lacks, e.g. Qwen3's empty think block, is not in it), which
      // must lie after the messages before it, rendered as they are in the conversation.
      const std::string history = render(nlohmann::ordered_json(messages.begin(), messages.begin() + t.index), false).text;
      span.first = std::min(t.begin, common_prefix(text, t.alone));
      const auto specials = tok.special_token_texts();
      while (span.first > history.size() && text[span.first - 1] != '\n' && !ends_with_any(specials, text, span.first))
        --span.first;  // never start inside a token: back to a line break or special token
      DIST_CHECK(same_prefix(text, history, history.size()) && span.first >= history.size(), where,
                 ": the chat template renders the messages before assistant messages[", t.index,
                 "] differently once later messages follow, so the turn's tokens cannot be determined");
      const auto ids = tok.encode(std::string_view(t.alone).substr(t.begin, t.end - t.begin), false);
      DIST_CHECK(!ids.empty() && tok.is_special(ids.back()), where, ": the chat template rewrites assistant messages[",
                 t.index, "] once later messages follow and the turn does not end with a special token, so its end "
                 "in the conversation cannot be determined");
      const std::string closing = tok.token_bytes(ids.back());
      const size_t limit = k + 1 < turns.size() ? turns[k + 1].begin : text.size();
      const size_t at = text.find(closing, span.first);
      DIST_CHECK(at != std::string::npos && at + closing.size() <= limit, where, ": assistant messages[", t.index,
                 "]: its end-of-turn token ", closing, " is missing from the rendered conversation");
      span.second = at + closing.size();
    }
    DIST_CHECK(out.assistant.empty() || span.first >= out.assistant.back().second, where, ": assistant messages[",
               t.index, "] overlaps the turn before it in the rendered conversation");
    out.assistant.push_back(span);
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
