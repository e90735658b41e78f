// Python's printf-style string formatting (`"%s: %d" % (a, b)` and jinja2's `format`
// filter), with Python's rules for argument tuples, mappings and code-point widths.
#include <cmath>
#include <cstdio>

#include "data/text/jinja_builtins.h"
#include "data/text/jinja_text.h"

namespace distillery::text::jinja {
namespace format_detail {

std::string pad_text(const std::string& s, int64_t width, bool left_align) {
  int64_t len = count_code_points(s);
  if (width <= len) return s;
  std::string fill(static_cast<size_t>(width - len), ' ');
  return left_align ? s + fill : fill + s;
}

std::string format_number(const Value& v, char type, const std::string& flags, int64_t width, int64_t precision) {
  if (!v.is_number())
    throw TemplateError(std::string("%") + type + " format: a real number is required, not " + v.type_name());
  std::string spec = "%" + flags;
  if (width >= 0) spec += std::to_string(width);
  if (precision >= 0) spec += "." + std::to_string(precision);
  char buf[512];
  if (type == 'd' || type == 'i' || type == 'u' || type == 'o' || type == 'x' || type == 'X') {
    if (v.is_float() && !std::isfinite(v.as_double())) throw TemplateError("cannot convert float infinity or NaN to integer");
    long long i = v.is_float() ? static_cast<long long>(std::trunc(v.as_double())) : static_cast<long long>(v.as_int());
    char conv = (type == 'i' || type == 'u') ? 'd' : type;
    std::string s = spec + "ll" + conv;
    // Python prints octal with an "0o" prefix under '#'.
    if (conv == 'o' && flags.find('#') != std::string::npos) {
      std::string no_alt = spec;
      no_alt.erase(no_alt.find('#'), 1);
      std::snprintf(buf, sizeof buf, (no_alt + "llo").c_str(), i < 0 ? -i : i);
      std::string digits = buf;
      size_t first = digits.find_first_not_of(' ');
      digits.insert(first, i < 0 ? "-0o" : "0o");
      return digits;
    }
    std::snprintf(buf, sizeof buf, s.c_str(), i);
    return buf;
  }
  std::snprintf(buf, sizeof buf, (spec + type).c_str(), v.as_double());
  return buf;
}

}  // namespace format_detail

std::string percent_format(const std::string& format, const Value& args) {
  using namespace format_detail;
  std::vector<Value> positional;
  const Value* mapping = nullptr;
  if (args.is_list() && args.as_list().is_tuple) {
    positional = args.as_list().items;
  } else {
    positional.push_back(args);
    if (args.is_dict()) mapping = &args;  // serves %(key)s, or is itself the one %s argument
  }
  size_t next_arg = 0;
  auto take = [&]() -> const Value& {
    if (next_arg >= positional.size()) throw TemplateError("not enough arguments for format string");
    return positional[next_arg++];
  };
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) throw TemplateError("incomplete format");
    const Value* value = nullptr;
    if (format[i] == '(') {
      size_t close = format.find(')', i);
      if (close == std::string::npos) throw TemplateError("incomplete format key");
      if (!mapping) throw TemplateError("format requires a mapping");
      std::string key = format.substr(i + 1, close - i - 1);
      value = mapping->as_dict().find(key);
      if (!value) throw TemplateError("KeyError: '" + key + "'");
      i = close + 1;
    }
    std::string flags;
    while (i < format.size() && std::string("#0- +").find(format[i]) != std::string::npos) flags += format[i++];
    int64_t width = -1, precision = -1;
    auto read_int = [&](int64_t& target) {
      if (i < format.size() && format[i] == '*') {
        const Value& w = take();
        if (!w.is_int()) throw TemplateError("* wants int");
        target = w.as_int();
        ++i;
        return;
      }
      if (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) {
        target = 0;
        while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) target = target * 10 + (format[i++] - '0');
      }
    };
    read_int(width);
    if (width < -1) {
      flags += '-';
      width = -width;
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      precision = 0;
      read_int(precision);
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) throw TemplateError("incomplete format");
    char type = format[i];
    if (type == '%') {
      out += '%';
      continue;
    }
    const Value& v = value ? *value : take();
    bool left = flags.find('-') != std::string::npos;
    switch (type) {
      case 's':
      case 'r':
      case 'a': {
        std::string s = type == 's' ? to_str(v) : to_repr(v);
        if (precision >= 0) {
          std::u32string u = decode_utf8(s);
          if (static_cast<int64_t>(u.size()) > precision) s = encode_utf8(u.substr(0, static_cast<size_t>(precision)));
        }
        out += pad_text(s, width, left);
        break;
      }
      case 'c': {
        std::string s;
        if (v.is_string() && count_code_points(v.as_string()) == 1) s = v.as_string();
        else if (v.is_int()) append_utf8(s, static_cast<char32_t>(v.as_int()));
        else throw TemplateError("%c requires int or char");
        out += pad_text(s, width, left);
        break;
      }
      case 'd': case 'i': case 'u': case 'o': case 'x': case 'X':
      case 'e': case 'E': case 'f': case 'F': case 'g': case 'G':
        out += format_number(v, type, flags, width, precision);
        break;
      default:
        throw TemplateError(std::string("unsupported format character '") + type + "'");
    }
  }
  if (!mapping && next_arg < positional.size())
    throw TemplateError("not all arguments converted during string formatting");
  return out;
}

}  // namespace distillery::text::jinja
