#include "data/text/jinja_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/text/jinja_text.h"

namespace distillery::text::jinja {
namespace json_detail {

template <typename Json>
Value convert(const Json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return Value::none();
    case nlohmann::json::value_t::boolean: return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      auto u = j.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value(static_cast<int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float: return Value(j.template get<double>());
    case nlohmann::json::value_t::string: return Value(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(convert(item));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<std::string, Value>> entries;
      entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) entries.emplace_back(it.key(), convert(it.value()));
      return Value::dict(std::move(entries));
    }
    default: throw TemplateError("binary JSON values cannot be passed to a chat template");
  }
}

void dump_string_ascii(std::string& out, const std::string& s) {
  out += '"';
  char buf[16];
  for (char32_t c : decode_utf8(s)) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c == '\b') out += "\\b";
    else if (c == '\f') out += "\\f";
    else if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
    else if (c < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      char32_t v = c - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                    static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      out += buf;
    }
  }
  out += '"';
}

void dump_string(std::string& out, const std::string& s, bool ensure_ascii) {
  if (ensure_ascii) return dump_string_ascii(out, s);
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

struct Dumper {
  const JsonDumpOptions& options;
  std::string item_separator;
  std::string key_separator;
  std::string out;

  void newline(int depth) {
    out += '\n';
    for (int i = 0; i < depth; ++i) out += options.indent;
  }

  void dump(const Value& v, int depth) {
    switch (v.kind()) {
      case Value::Kind::None: out += "null"; return;
      case Value::Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
      case Value::Kind::Int: out += std::to_string(v.as_int()); return;
      case Value::Kind::Float: {
        double d = v.as_double();
        if (std::isnan(d)) out += "NaN";
        else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
        else out += py_float_repr(d);
        return;
      }
      case Value::Kind::String: dump_string(out, v.as_string(), options.ensure_ascii); return;
      case Value::Kind::List: {
        if (v.as_list().is_iterator) break;
        const auto& items = v.as_list().items;
        if (items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out += item_separator;
          if (options.has_indent) newline(depth + 1);
          dump(items[i], depth + 1);
        }
        if (options.has_indent) newline(depth);
        out += ']';
        return;
      }
      case Value::Kind::Dict: {
        if (v.is_namespace()) break;
        std::vector<const std::pair<std::string, Value>*> entries;
        for (const auto& e : v.as_dict().entries) entries.push_back(&e);
        if (entries.empty()) {
          out += "{}";
          return;
        }
        if (options.sort_keys)
          std::stable_sort(entries.begin(), entries.end(),
                           [](auto* a, auto* b) { return a->first < b->first; });
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i) out += item_separator;
          if (options.has_indent) newline(depth + 1);
          dump_string(out, entries[i]->first, options.ensure_ascii);
          out += key_separator;
          dump(entries[i]->second, depth + 1);
        }
        if (options.has_indent) newline(depth);
        out += '}';
        return;
      }
      default: break;
    }
    throw TemplateError("Object of type " + v.type_name() + " is not JSON serializable");
  }
};

}  // namespace json_detail

Value from_json(const nlohmann::ordered_json& j) { return json_detail::convert(j); }
Value from_json(const nlohmann::json& j) { return json_detail::convert(j); }

std::string to_json(const Value& v, const JsonDumpOptions& options) {
  json_detail::Dumper d{options, options.item_separator, options.key_separator, {}};
  if (!options.custom_separators) {
    d.item_separator = options.has_indent ? "," : ", ";
    d.key_separator = ": ";
  }
  d.dump(v, 0);
  return d.out;
}

}  // namespace distillery::text::jinja
