// Oniguruma (Ruby syntax) -> PCRE2 pattern translation; see regex.h for what and why.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/text/onig_unicode_classes.h"
#include "data/text/regex.h"
#include "data/text/utf8.h"

namespace distillery::text {

namespace onig_translate_detail {

std::string hex_escape(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\x{%X}", cp);
  return buf;
}

const char* const kHexDigitBody = "\\x{30}-\\x{39}\\x{41}-\\x{46}\\x{61}-\\x{66}";

// One parsed escape sequence.
struct Escape {
  enum Kind { kLiteral, kClass, kRaw, kWordBoundary } kind = kLiteral;
  uint32_t code_point = 0;  // kLiteral
  std::string body;         // kClass: class body; kRaw: text to copy
  bool negated = false;     // kClass / kWordBoundary
};

class Translator {
 public:
  explicit Translator(std::string_view pattern) : p_(pattern) {}

  std::string run() {
    while (i_ < p_.size()) {
      const char c = p_[i_];
      if (c == '\\') {
        emit_escape_outside(parse_escape(false));
      } else if (c == '[') {
        translate_class();
      } else if (c == '(') {
        translate_group();
      } else if (c == '{') {
        translate_brace();
      } else if (static_cast<unsigned char>(c) >= 0x80) {
        const size_t start = i_;
        utf8::next(p_, i_);
        out_ += hex_escape(decode(start));
      } else {
        out_ += c;
        ++i_;
      }
    }
    return out_;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument(what + " (at offset " + std::to_string(i_) + " of the regex)");
  }

  uint32_t decode(size_t at) const {
    size_t k = at;
    return utf8::next(p_, k);
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  uint32_t read_hex(size_t max_digits, size_t min_digits) {
    uint32_t v = 0;
    size_t n = 0;
    while (n < max_digits && i_ < p_.size() && hex_value(p_[i_]) >= 0) {
      v = v * 16 + hex_value(p_[i_++]);
      ++n;
    }
    if (n < min_digits) fail("malformed hexadecimal escape");
    return v;
  }

  // Parses the escape at p_[i_] == '\\' and advances past it.
  Escape parse_escape(bool in_class) {
    ++i_;
    if (i_ >= p_.size()) fail("pattern ends with a backslash");
    const char c = p_[i_++];
    Escape e;
    auto literal = [&](uint32_t cp) {
      e.kind = Escape::kLiteral;
      e.code_point = cp;
      return e;
    };
    auto cls = [&](const OnigUnicodeClass* c, bool negated) {
      e.kind = Escape::kClass;
      e.body = c->body;
      e.negated = negated != c->negated;
      return e;
    };
    static const OnigUnicodeClass kHexDigit = {"h", false, kHexDigitBody};
    switch (c) {
      case 't': return literal(0x09);
      case 'n': return literal(0x0A);
      case 'r': return literal(0x0D);
      case 'f': return literal(0x0C);
      case 'v': return literal(0x0B);
      case 'a': return literal(0x07);
      case 'e': return literal(0x1B);
      case 's': case 'S': return cls(find_onig_class("s"), c == 'S');
      case 'w': case 'W': return cls(find_onig_class("w"), c == 'W');
      case 'd': case 'D': return cls(find_onig_class("d"), c == 'D');
      case 'h': case 'H': return cls(&kHexDigit, c == 'H');
      case 'x':
        if (i_ < p_.size() && p_[i_] == '{') {
          ++i_;
          const uint32_t v = read_hex(8, 1);
          if (i_ >= p_.size() || p_[i_] != '}') fail("malformed \\x{...} escape");
          ++i_;
          if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) fail("\\x{...} is not a valid code point");
          return literal(v);
        }
        return literal(read_hex(2, 1));
      case 'u': return literal(read_hex(4, 4));
      case '0': {
        uint32_t v = 0;
        for (int k = 0; k < 2 && i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '7'; ++k) v = v * 8 + (p_[i_++] - '0');
        return literal(v);
      }
      case 'c': {
        if (i_ >= p_.size()) fail("malformed \\c escape");
        return literal(static_cast<unsigned char>(p_[i_++]) & 0x1F);
      }
      case 'p': case 'P': {
        bool negated = c == 'P';
        std::string name;
        if (i_ < p_.size() && p_[i_] == '{') {
          const size_t close = p_.find('}', i_);
          if (close == std::string_view::npos) fail("unterminated \\p{...}");
          name = std::string(p_.substr(i_ + 1, close - i_ - 1));
          i_ = close + 1;
          if (!name.empty() && name[0] == '^') {
            negated = !negated;
            name.erase(0, 1);
          }
        } else if (i_ < p_.size()) {
          name = std::string(1, p_[i_++]);
        }
        const OnigUnicodeClass* property = find_onig_property(name);
        if (property == nullptr) fail("uses the Unicode property \\p{" + name + "}, which distillery does not support (general categories only)");
        return cls(property, negated);
      }
      case 'b':
        if (in_class) return literal(0x08);
        e.kind = Escape::kWordBoundary;
        return e;
      case 'B':
        if (in_class) break;
        e.kind = Escape::kWordBoundary;
        e.negated = true;
        return e;
      case 'A': case 'z': case 'Z': case 'G':
        if (in_class) break;
        e.kind = Escape::kRaw;
        e.body = std::string("\\") + c;
        return e;
      case 'k':
        if (in_class) break;
        if (i_ < p_.size() && (p_[i_] == '<' || p_[i_] == '\'')) {
          const char close_char = p_[i_] == '<' ? '>' : '\'';
          const size_t close = p_.find(close_char, i_ + 1);
          if (close == std::string_view::npos) fail("unterminated \\k back-reference");
          e.kind = Escape::kRaw;
          e.body = "\\k<" + std::string(p_.substr(i_ + 1, close - i_ - 1)) + ">";
          i_ = close + 1;
          return e;
        }
        break;
      default:
        if (c >= '1' && c <= '9' && !in_class) {
          e.kind = Escape::kRaw;
          e.body = std::string("\\") + c;
          while (i_ < p_.size() && p_[i_] >= '0' && p_[i_] <= '9') e.body += p_[i_++];
          return e;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
          // An escaped punctuation or non-ASCII character stands for itself.
          return literal(decode(i_ - 1));
        }
    }
    --i_;
    fail(std::string("uses \\") + c + ", which distillery does not support");
  }

  void emit_escape_outside(const Escape& e) {
    switch (e.kind) {
      case Escape::kLiteral:
        out_ += hex_escape(e.code_point);
        break;
      case Escape::kClass:
        out_ += e.negated ? "[^" : "[";
        out_ += e.body;
        out_ += "]";
        break;
      case Escape::kRaw:
        out_ += e.body;
        break;
      case Escape::kWordBoundary: {
        const OnigUnicodeClass* word = find_onig_class("w");
        const std::string w = std::string(word->negated ? "[^" : "[") + word->body + "]";
        if (e.negated) {
          out_ += "(?:(?<=" + w + ")(?=" + w + ")|(?<!" + w + ")(?!" + w + "))";
        } else {
          out_ += "(?:(?<=" + w + ")(?!" + w + ")|(?<!" + w + ")(?=" + w + "))";
        }
        break;
      }
    }
  }

  // Reads one class member at p_[i_]: a literal code point or a class escape.
  Escape class_atom() {
    if (p_[i_] == '\\') {
      Escape e = parse_escape(true);
      if (e.kind != Escape::kLiteral && e.kind != Escape::kClass) fail("unsupported escape inside [...]");
      return e;
    }
    Escape e;
    e.code_point = decode(i_);
    utf8::next(p_, i_);
    return e;
  }

  void translate_class() {
    ++i_;  // '['
    bool negated = false;
    if (i_ < p_.size() && p_[i_] == '^') {
      negated = true;
      ++i_;
    }
    std::string positive;
    std::vector<std::string> negated_parts;
    bool first = true;
    while (true) {
      if (i_ >= p_.size()) fail("unterminated character class");
      const char c = p_[i_];
      if (c == ']' && !first) {
        ++i_;
        break;
      }
      if (c == '[') fail(p_.compare(i_, 2, "[:") == 0 ? "uses a POSIX bracket [:...:], which distillery does not support"
                                                       : "uses a nested character class, which distillery does not support");
      if (c == '&' && i_ + 1 < p_.size() && p_[i_ + 1] == '&') fail("uses a class intersection &&, which distillery does not support");
      first = false;
      const Escape atom = class_atom();
      if (atom.kind == Escape::kClass) {
        if (atom.negated) negated_parts.push_back(atom.body);
        else positive += atom.body;
        continue;
      }
      if (i_ + 1 < p_.size() && p_[i_] == '-' && p_[i_ + 1] != ']') {
        ++i_;
        const Escape hi = class_atom();
        if (hi.kind != Escape::kLiteral) fail("a range in [...] must end with a character");
        if (hi.code_point < atom.code_point) fail("a range in [...] is out of order");
        positive += hex_escape(atom.code_point) + "-" + hex_escape(hi.code_point);
      } else {
        positive += hex_escape(atom.code_point);
      }
    }
    if (negated_parts.empty()) {
      out_ += negated ? "[^" : "[";
      out_ += positive;
      out_ += "]";
      return;
    }
    // A class mixing positive members with negated ones (\S, \P{L}, ...) becomes set algebra:
    //   [P \S]  = P or not-s        -> (?:[P]|[^s])
    //   [^P \S] = not-P and s       -> (?:(?![P])[s])
    out_ += "(?:";
    if (!negated) {
      bool any = false;
      if (!positive.empty()) {
        out_ += "[" + positive + "]";
        any = true;
      }
      for (const auto& part : negated_parts) {
        out_ += any ? "|" : "";
        out_ += "[^" + part + "]";
        any = true;
      }
    } else {
      if (!positive.empty()) out_ += "(?![" + positive + "])";
      for (size_t k = 0; k + 1 < negated_parts.size(); ++k) out_ += "(?=[" + negated_parts[k] + "])";
      out_ += "[" + negated_parts.back() + "]";
    }
    out_ += ")";
  }

  void translate_group() {
    ++i_;  // '('
    if (i_ >= p_.size() || p_[i_] != '?') {
      out_ += '(';
      return;
    }
    ++i_;
    if (i_ >= p_.size()) fail("unterminated group");
    const char c = p_[i_];
    if (c == ':' || c == '=' || c == '!' || c == '>') {
      out_ += "(?";
      out_ += c;
      ++i_;
      return;
    }
    if (c == '<' && i_ + 1 < p_.size() && (p_[i_ + 1] == '=' || p_[i_ + 1] == '!')) {
      out_ += "(?<";
      out_ += p_[i_ + 1];
      i_ += 2;
      return;
    }
    if (c == '<' || c == '\'') {
      const char close_char = c == '<' ? '>' : '\'';
      const size_t close = p_.find(close_char, i_ + 1);
      if (close == std::string_view::npos) fail("unterminated group name");
      out_ += "(?<" + std::string(p_.substr(i_ + 1, close - i_ - 1)) + ">";
      i_ = close + 1;
      return;
    }
    if (c == '#') {
      const size_t close = p_.find(')', i_);
      if (close == std::string_view::npos) fail("unterminated comment group");
      i_ = close + 1;
      return;
    }
    // Option groups: (?imx-imx) and (?imx-imx:...). Ruby's m is PCRE2's s.
    std::string flags;
    while (i_ < p_.size() && p_[i_] != ')' && p_[i_] != ':') {
      const char f = p_[i_++];
      if (f == 'i' || f == 'x' || f == '-') flags += f;
      else if (f == 'm') flags += 's';
      else fail(std::string("uses the group option (?") + f + ", which distillery does not support");
    }
    if (i_ >= p_.size()) fail("unterminated group");
    out_ += "(?" + flags + p_[i_];
    ++i_;
  }

  void translate_brace() {
    // Ruby reads {,n} as {0,n}; PCRE2 would read it as literal text.
    size_t k = i_ + 1;
    if (k < p_.size() && p_[k] == ',') {
      size_t d = k + 1;
      while (d < p_.size() && p_[d] >= '0' && p_[d] <= '9') ++d;
      if (d > k + 1 && d < p_.size() && p_[d] == '}') {
        out_ += "{0" + std::string(p_.substr(k, d - k)) + "}";
        i_ = d + 1;
        check_no_possessive_interval();
        return;
      }
    }
    size_t d = k;
    while (d < p_.size() && ((p_[d] >= '0' && p_[d] <= '9') || p_[d] == ',')) ++d;
    if (d > k && d < p_.size() && p_[d] == '}') {
      out_ += std::string(p_.substr(i_, d + 1 - i_));
      i_ = d + 1;
      check_no_possessive_interval();
      return;
    }
    out_ += "\\{";
    ++i_;
  }

  void check_no_possessive_interval() {
    // In Ruby syntax {n,m}+ repeats the interval; in PCRE2 it is possessive.
    if (i_ < p_.size() && p_[i_] == '+') fail("uses {n,m}+, which Oniguruma and PCRE2 read differently");
  }

  std::string_view p_;
  size_t i_ = 0;
  std::string out_;
};

}  // namespace onig_translate_detail

std::string translate_onig_pattern(std::string_view pattern) {
  if (utf8::find_invalid(pattern) != std::string_view::npos) throw std::invalid_argument("the regex is not valid UTF-8");
  return onig_translate_detail::Translator(pattern).run();
}

std::string escape_regex_literal(std::string_view literal) {
  std::string out;
  size_t i = 0;
  while (i < literal.size()) out += onig_translate_detail::hex_escape(utf8::next(literal, i));
  return out;
}

}  // namespace distillery::text
