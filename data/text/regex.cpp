#include "data/text/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>

#include "data/text/json_node.h"
#include "data/text/utf8.h"
#include "common/error.h"

namespace distillery::text {

namespace regex_detail {

// Per-thread match scratch: the match data and the JIT stack are not shareable between threads,
// while the compiled pattern is. One ovector pair is enough: we only need the whole match.
struct ThreadMatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;

  ThreadMatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    // Patterns like \s+(?!\S) backtrack once per character of a whitespace run, so long runs need
    // a deep JIT stack; it is reserved lazily by the OS, so a generous limit costs nothing.
    jit_stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    if (jit_stack != nullptr) pcre2_jit_stack_assign(context, nullptr, jit_stack);
    pcre2_set_heap_limit(context, 1024u * 1024);  // KiB (1 GiB), for the interpreter fallback
  }
  ~ThreadMatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    if (jit_stack != nullptr) pcre2_jit_stack_free(jit_stack);
  }
};

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace regex_detail

struct Regex::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

std::unique_ptr<Regex> Regex::onig(std::string_view pattern) {
  return std::unique_ptr<Regex>(new Regex(std::string(pattern), translate_onig_pattern(pattern)));
}

std::unique_ptr<Regex> Regex::pcre2(std::string_view pattern) {
  return std::unique_ptr<Regex>(new Regex(std::string(pattern), std::string(pattern)));
}

Regex::Regex(std::string source, std::string translated)
    : source_(std::move(source)), translated_(std::move(translated)), compiled_(std::make_unique<Compiled>()) {
  pcre2_compile_context* ctx = pcre2_compile_context_create(nullptr);
  pcre2_set_newline(ctx, PCRE2_NEWLINE_LF);
  int error = 0;
  PCRE2_SIZE offset = 0;
  // MULTILINE: in Ruby syntax ^ and $ always match at line boundaries.
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated_.data()), translated_.size(),
                                  PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &error, &offset, ctx);
  pcre2_compile_context_free(ctx);
  if (compiled_->code == nullptr) {
    throw std::invalid_argument("is not a valid regex: " + regex_detail::pcre2_message(error));
  }
  compiled_->jit = pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;

bool Regex::match_from(std::string_view text, size_t start, size_t* begin, size_t* end) const {
  auto& state = regex_detail::thread_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int rc;
  if (compiled_->jit) {
    rc = pcre2_jit_match(compiled_->code, subject, text.size(), start, 0, state.data, state.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(compiled_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       state.data, state.context);
    }
  } else {
    rc = pcre2_match(compiled_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, state.data, state.context);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    DIST_FAIL("regex '", source_, "' failed on a ", text.size(), "-byte input: ",
              regex_detail::pcre2_message(rc));
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
  *begin = ov[0];
  *end = ov[1];
  return true;
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  // The onig crate's FindMatches: after a non-empty match, an empty match is skipped once; after
  // any empty match the search resumes one character further.
  size_t last_end = 0;
  bool skip_next_empty = false;
  while (last_end <= text.size()) {
    size_t b = 0, e = 0;
    if (!match_from(text, last_end, &b, &e)) break;
    last_end = e;
    if (b == e) {
      last_end += last_end < text.size() ? utf8::sequence_length(static_cast<unsigned char>(text[last_end])) : 1;
      if (skip_next_empty) {
        skip_next_empty = false;
        continue;
      }
    } else {
      skip_next_empty = true;
    }
    out.emplace_back(b, e);
  }
}

bool Regex::search(std::string_view text) const {
  size_t b = 0, e = 0;
  return match_from(text, 0, &b, &e);
}

std::unique_ptr<Regex> regex_from_pattern_json(const JsonNode& pattern) {
  pattern.require_object();
  if (const auto literal = pattern.find("String")) return Regex::onig(escape_regex_literal(literal->as_string()));
  if (const auto regex = pattern.find("Regex")) {
    const std::string source = regex->as_string();
    try {
      return Regex::onig(source);
    } catch (const std::invalid_argument& e) {
      regex->fail("'" + source + "' " + e.what());
    }
  }
  pattern.fail("must be {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace distillery::text
