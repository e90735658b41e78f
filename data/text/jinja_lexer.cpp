#include "data/text/jinja_lexer.h"

#include <algorithm>
#include <cstdio>

#include "data/text/jinja_text.h"
#include "data/text/jinja_value.h"

namespace distillery::text::jinja {
namespace lexer_detail {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Length of Python's `\s` run (Unicode whitespace) starting at pos.
size_t whitespace_run(std::string_view s, size_t pos) {
  size_t i = pos;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (!py_isspace(c)) break;
      ++i;
      continue;
    }
    size_t len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    std::u32string cp = decode_utf8(s.substr(i, len));
    if (cp.empty() || !py_isspace(cp[0])) break;
    i += len;
  }
  return i - pos;
}

// Python's str.rstrip() (Unicode whitespace).
std::string_view rstrip_ws(std::string_view s) {
  std::u32string u = decode_utf8(s);
  size_t bytes = s.size();
  for (size_t i = u.size(); i > 0 && py_isspace(u[i - 1]); --i) {
    std::string enc;
    append_utf8(enc, u[i - 1]);
    bytes -= enc.size();
  }
  return s.substr(0, bytes);
}

// jinja2 decodes string literals with Python's "unicode-escape" codec.
std::string decode_string_literal(std::string_view raw, int line) {
  std::string out;
  auto hex = [&](size_t pos, size_t n) -> char32_t {
    if (pos + n > raw.size()) throw TemplateError("truncated escape in string literal", line);
    char32_t v = 0;
    for (size_t k = 0; k < n; ++k) {
      char c = raw[pos + k];
      int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) throw TemplateError("truncated escape in string literal", line);
      v = v * 16 + static_cast<char32_t>(d);
    }
    return v;
  };
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\' || i + 1 == raw.size()) {
      out += c;
      continue;
    }
    char e = raw[++i];
    switch (e) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': append_utf8(out, hex(i + 1, 2)); i += 2; break;
      case 'u': append_utf8(out, hex(i + 1, 4)); i += 4; break;
      case 'U': append_utf8(out, hex(i + 1, 8)); i += 8; break;
      case 'N': throw TemplateError("unsupported \\N{...} escape in string literal", line);
      default:
        if (e >= '0' && e <= '7') {
          char32_t v = 0;
          size_t k = 0;
          for (; k < 3 && i + k < raw.size() && raw[i + k] >= '0' && raw[i + k] <= '7'; ++k)
            v = v * 8 + static_cast<char32_t>(raw[i + k] - '0');
          append_utf8(out, v);
          i += k - 1;
        } else if (static_cast<unsigned char>(e) >= 0x80) {
          // The codec sees the backslash-escaped form of the character after an escaped
          // backslash, so the escape's letters come out literally.
          size_t len = static_cast<unsigned char>(e) < 0xE0 ? 2 : static_cast<unsigned char>(e) < 0xF0 ? 3 : 4;
          char32_t cp = decode_utf8(raw.substr(i, len))[0];
          char buf[16];
          if (cp < 0x100) std::snprintf(buf, sizeof buf, "x%02x", static_cast<unsigned>(cp));
          else if (cp < 0x10000) std::snprintf(buf, sizeof buf, "u%04x", static_cast<unsigned>(cp));
          else std::snprintf(buf, sizeof buf, "U%08x", static_cast<unsigned>(cp));
          out += '\\';
          out += buf;
          i += len - 1;
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') newlines_.push_back(i);
  }

  std::vector<Token> run() {
    size_t n = src_.size();
    while (pos_ < n) {
      size_t start = find_tag_start(pos_);
      if (start == std::string::npos) {
        emit(TokenType::Data, src_.substr(pos_), pos_);
        break;
      }
      char kind = src_[start + 1];
      size_t after = start + 2;
      char sign = 0;
      if (after < n && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
      std::string_view text = std::string_view(src_).substr(pos_, start - pos_);
      size_t raw_end = kind == '%' ? match_raw_begin(after) : std::string::npos;
      text = strip_before_tag(text, sign, kind != '{');
      emit(TokenType::Data, std::string(text), pos_);
      if (raw_end != std::string::npos) {
        lex_raw(raw_end);
      } else if (kind == '#') {
        lex_comment(after, start);
      } else {
        lex_tag(kind, start, after);
      }
    }
    tokens_.push_back({TokenType::End, "", line_at(n)});
    return std::move(tokens_);
  }

 private:
  int line_at(size_t pos) const {
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), pos) - newlines_.begin());
  }

  void emit(TokenType type, std::string text, size_t pos) {
    int line = line_at(pos);
    if (type == TokenType::Data && text.empty()) return;
    tokens_.push_back({type, std::move(text), line});
  }

  size_t find_tag_start(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  // Text before a tag: `-` strips all whitespace; with lstrip_blocks a block or comment tag
  // preceded on its line only by whitespace drops that whitespace.
  std::string_view strip_before_tag(std::string_view text, char sign, bool is_block_or_comment) {
    if (sign == '-') return rstrip_ws(text);
    if (sign == '+' || !is_block_or_comment) return text;
    size_t nl = text.rfind('\n');
    size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
    if (l_pos > 0 || line_starting_) {
      std::string_view tail = text.substr(l_pos);
      if (!tail.empty() && whitespace_run(tail, 0) == tail.size()) return text.substr(0, l_pos);
    }
    return text;
  }

  // `{% raw %}`: returns the position after its closing `%}` (no trim_blocks newline), or npos.
  size_t match_raw_begin(size_t after) const {
    size_t i = after + whitespace_run(src_, after);
    if (src_.compare(i, 3, "raw") != 0) return std::string::npos;
    i += 3;
    size_t ws = whitespace_run(src_, i);
    if (ws == 0 && i < src_.size() && is_name_char(src_[i])) return std::string::npos;
    i += ws;
    if (src_.compare(i, 3, "-%}") == 0) return i + 3 + whitespace_run(src_, i + 3);
    if (src_.compare(i, 2, "%}") == 0) return i + 2;
    return std::string::npos;
  }

  // Consumes a block end at pos (`+%}`, `-%}` plus whitespace, `%}` plus one newline);
  // returns the end position or npos.
  size_t match_block_end(size_t pos) const {
    if (src_.compare(pos, 3, "+%}") == 0) return pos + 3;
    if (src_.compare(pos, 3, "-%}") == 0) return pos + 3 + whitespace_run(src_, pos + 3);
    if (src_.compare(pos, 2, "%}") == 0) return pos + 2 + (pos + 2 < src_.size() && src_[pos + 2] == '\n');
    return std::string::npos;
  }

  void lex_raw(size_t body) {
    line_starting_ = src_[body - 1] == '\n';
    for (size_t i = src_.find("{%", body); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t j = i + 2;
      char sign = 0;
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) sign = src_[j++];
      j += whitespace_run(src_, j);
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      j += whitespace_run(src_, j);
      size_t end = match_block_end(j);
      if (end == std::string::npos) continue;
      std::string_view text = std::string_view(src_).substr(body, i - body);
      emit(TokenType::Data, std::string(strip_before_tag(text, sign, true)), body);
      pos_ = end;
      line_starting_ = src_[end - 1] == '\n';
      return;
    }
    throw TemplateError("missing end of raw directive", line_at(body));
  }

  void lex_comment(size_t after, size_t start) {
    for (size_t i = after; i + 1 < src_.size(); ++i) {
      size_t end = std::string::npos;
      if (src_.compare(i, 3, "+#}") == 0) end = i + 3;
      else if (src_.compare(i, 3, "-#}") == 0) end = i + 3 + whitespace_run(src_, i + 3);
      else if (src_.compare(i, 2, "#}") == 0) end = i + 2 + (i + 2 < src_.size() && src_[i + 2] == '\n');
      if (end == std::string::npos) continue;
      pos_ = end;
      line_starting_ = src_[end - 1] == '\n';
      return;
    }
    throw TemplateError("missing end of comment tag", line_at(start));
  }

  void lex_tag(char kind, size_t start, size_t pos) {
    bool block = kind == '%';
    emit(block ? TokenType::BlockBegin : TokenType::VarBegin, "", start);
    std::vector<char> balance;
    size_t n = src_.size();
    while (true) {
      if (pos >= n)
        throw TemplateError(std::string("unexpected end of template, expected '") + (block ? "%}" : "}}") + "'",
                            line_at(start));
      if (balance.empty()) {
        size_t end = std::string::npos;
        if (block) end = match_block_end(pos);
        else if (src_.compare(pos, 3, "-}}") == 0) end = pos + 3 + whitespace_run(src_, pos + 3);
        else if (src_.compare(pos, 2, "}}") == 0) end = pos + 2;
        if (end != std::string::npos) {
          emit(block ? TokenType::BlockEnd : TokenType::VarEnd, "", pos);
          pos_ = end;
          line_starting_ = src_[end - 1] == '\n';
          return;
        }
      }
      char c = src_[pos];
      if (size_t ws = whitespace_run(src_, pos)) {
        pos += ws;
      } else if (is_digit(c)) {
        pos = lex_number(pos);
      } else if (is_name_start(c)) {
        size_t e = pos;
        while (e < n && is_name_char(src_[e])) ++e;
        emit(TokenType::Name, src_.substr(pos, e - pos), pos);
        pos = e;
      } else if (c == '\'' || c == '"') {
        size_t e = pos + 1;
        while (e < n && src_[e] != c) e += src_[e] == '\\' ? 2 : 1;
        if (e >= n) throw TemplateError("unterminated string literal", line_at(pos));
        emit(TokenType::String, decode_string_literal(std::string_view(src_).substr(pos + 1, e - pos - 1), line_at(pos)), pos);
        pos = e + 1;
      } else {
        pos = lex_operator(pos, balance);
      }
    }
  }

  size_t lex_number(size_t pos) {
    auto digits = [&](size_t p) {  // (\d+_)*\d+
      size_t e = p;
      while (e < src_.size() && (is_digit(src_[e]) || (src_[e] == '_' && e + 1 < src_.size() && is_digit(src_[e + 1]) && e > p)))
        ++e;
      return e;
    };
    auto strip = [](std::string s) {
      std::string out;
      for (char c : s)
        if (c != '_') out += c;
      return out;
    };
    size_t e = digits(pos);
    size_t f = e;
    bool is_float = false;
    if (f + 1 < src_.size() && src_[f] == '.' && is_digit(src_[f + 1])) {
      f = digits(f + 1);
      is_float = true;
    }
    if (f < src_.size() && (src_[f] == 'e' || src_[f] == 'E')) {
      size_t x = f + 1;
      if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
      if (x < src_.size() && is_digit(src_[x])) {
        f = digits(x);
        is_float = true;
      }
    }
    bool after_dot = pos > 0 && src_[pos - 1] == '.';
    if (is_float && !after_dot) {
      emit(TokenType::Float, strip(src_.substr(pos, f - pos)), pos);
      return f;
    }
    if (src_[pos] == '0' && e > pos + 1 && src_.find_first_not_of("0_", pos) >= e) {
      emit(TokenType::Integer, "0", pos);
      return e;
    }
    if (src_[pos] == '0' && e == pos + 1 && pos + 1 < src_.size() && std::string("bBoOxX").find(src_[pos + 1]) != std::string::npos)
      throw TemplateError("binary, octal and hex literals are not supported", line_at(pos));
    if (src_[pos] == '0' && e > pos + 1) e = pos + 1;  // "01" lexes as 0 then 1, as in jinja2
    emit(TokenType::Integer, strip(src_.substr(pos, e - pos)), pos);
    return e;
  }

  size_t lex_operator(size_t pos, std::vector<char>& balance) {
    static const char* const two[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : two) {
      if (src_.compare(pos, 2, op) == 0) {
        emit(TokenType::Operator, op, pos);
        return pos + 2;
      }
    }
    char c = src_[pos];
    if (std::string("+-/*%~[](){}><=.:|,;").find(c) == std::string::npos) {
      std::string shown(1, c);
      throw TemplateError("unexpected char '" + shown + "' in tag", line_at(pos));
    }
    if (c == '(' || c == '[' || c == '{') {
      balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance.empty()) throw TemplateError(std::string("unexpected '") + c + "'", line_at(pos));
      if (balance.back() != c)
        throw TemplateError(std::string("unexpected '") + c + "', expected '" + balance.back() + "'", line_at(pos));
      balance.pop_back();
    }
    emit(TokenType::Operator, std::string(1, c), pos);
    return pos + 1;
  }

  std::string src_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
  std::vector<size_t> newlines_;
};

// Only \n, \r\n and \r are line breaks; one trailing newline is dropped.
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace lexer_detail

std::vector<Token> tokenize(std::string_view source) {
  return lexer_detail::Lexer(lexer_detail::normalize_newlines(source)).run();
}

}  // namespace distillery::text::jinja
