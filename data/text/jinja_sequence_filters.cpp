// jinja2's filters over sequences and mappings: join, map, select/reject(attr), sort,
// dictsort, unique, min/max, sum, first/last, list, items, reverse, batch, slice, length.
// Where jinja2 returns a generator (map, select, unique, items, ...) the result is marked as
// one, so it is truthy even when empty and has no length, as in Python.
#include <algorithm>

#include "data/text/jinja_builtins.h"
#include "data/text/jinja_operators.h"
#include "data/text/jinja_text.h"

namespace distillery::text::jinja {
namespace sequence_filters_detail {

Value ignore_case(const Value& v) { return v.is_string() ? Value(py_lower(v.as_string())) : v; }

std::vector<std::string> split_on(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t hit = s.find(sep); hit != std::string::npos; hit = s.find(sep, start)) {
    parts.push_back(s.substr(start, hit - start));
    start = hit + 1;
  }
  parts.push_back(s.substr(start));
  return parts;
}

// jinja2's make_attrgetter: "a.b.0" walks items (getitem), digit parts as integer indexes.
Value lookup_attribute(const Value& item, const Value& attribute, const Value* dflt) {
  Value v = item;
  if (attribute.is_int()) {
    v = get_item(v, attribute);
  } else {
    for (const std::string& part : split_on(to_str(attribute), '.')) {
      bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
      v = get_item(v, digits ? Value(static_cast<int64_t>(std::stoll(part))) : Value(part));
    }
  }
  if (dflt && v.is_undefined()) return *dflt;
  return v;
}

std::vector<Value> items_of(const Value& v) {
  if (v.is_namespace()) throw TemplateError("'Namespace' object is not iterable");
  return iterate(v);
}

// select / reject / selectattr / rejectattr.
Value select_or_reject(const Value& seq, CallArgs& args, bool select, bool by_attribute) {
  size_t off = 0;
  Value attribute;
  if (by_attribute) {
    if (args.positional.empty()) throw TemplateError("missing parameter for attribute name");
    attribute = args.positional[0];
    off = 1;
  }
  TestFn test = nullptr;
  CallArgs test_args;
  if (args.positional.size() > off) {
    std::string name = to_str(args.positional[off]);
    test = find_test(name);
    if (!test) throw TemplateError("no test named '" + name + "'");
    test_args.positional.assign(args.positional.begin() + static_cast<long>(off) + 1, args.positional.end());
    test_args.keyword = args.keyword;
  }
  std::vector<Value> out;
  for (const Value& item : items_of(seq)) {
    Value probe = by_attribute ? lookup_attribute(item, attribute, nullptr) : item;
    bool passed = test ? test(probe, test_args) : probe.truthy();
    if (passed == select) out.push_back(item);
  }
  return Value::iterator(std::move(out));
}

Value f_select(const Value& v, CallArgs& a) { return select_or_reject(v, a, true, false); }
Value f_reject(const Value& v, CallArgs& a) { return select_or_reject(v, a, false, false); }
Value f_selectattr(const Value& v, CallArgs& a) { return select_or_reject(v, a, true, true); }
Value f_rejectattr(const Value& v, CallArgs& a) { return select_or_reject(v, a, false, true); }

Value f_map(const Value& seq, CallArgs& args) {
  std::vector<Value> out;
  const Value* attribute = nullptr;
  for (const auto& [k, v] : args.keyword)
    if (k == "attribute") attribute = &v;
  if (args.positional.empty() && attribute) {
    args.expect("map", 0, {"attribute", "default"});
    const Value* dflt = nullptr;
    for (const auto& [k, v] : args.keyword)
      if (k == "default") dflt = &v;
    if (dflt && dflt->is_none()) dflt = nullptr;  // jinja2: default=None means no default
    for (const Value& item : items_of(seq)) out.push_back(lookup_attribute(item, *attribute, dflt));
    return Value::iterator(std::move(out));
  }
  if (args.positional.empty()) throw TemplateError("map requires a filter argument");
  std::string name = to_str(args.positional[0]);
  FilterFn filter = find_filter(name);
  if (!filter) throw TemplateError("no filter named '" + name + "'");
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : items_of(seq)) {
    CallArgs pass = rest;
    out.push_back(filter(item, pass));
  }
  return Value::iterator(std::move(out));
}

Value f_join(const Value& seq, CallArgs& args) {
  args.expect("join", 2, {"d", "attribute"});
  const Value* sep = args.get(0, "d");
  const Value* attribute = args.get(1, "attribute");
  std::string d = sep ? to_str(*sep) : "";
  std::string out;
  bool first = true;
  for (const Value& item : items_of(seq)) {
    if (!first) out += d;
    first = false;
    out += to_str(attribute && !attribute->is_none() ? lookup_attribute(item, *attribute, nullptr) : item);
  }
  return Value(std::move(out));
}

Value f_first(const Value& seq, CallArgs& args) {
  args.expect("first", 0, {});
  std::vector<Value> items = items_of(seq);
  if (items.empty()) return Value::undefined_because("No first item, sequence was empty.");
  return items.front();
}

Value f_last(const Value& seq, CallArgs& args) {
  args.expect("last", 0, {});
  if (seq.is_list() && seq.as_list().is_iterator) throw TemplateError("'generator' object is not reversible");
  std::vector<Value> items = items_of(seq);
  if (items.empty()) return Value::undefined_because("No last item, sequence was empty.");
  return items.back();
}

Value f_length(const Value& v, CallArgs& args) {
  args.expect("length", 0, {});
  return Value(length(v));
}

Value f_list(const Value& v, CallArgs& args) {
  args.expect("list", 0, {});
  return Value::list(items_of(v));
}

Value f_items(const Value& v, CallArgs& args) {
  args.expect("items", 0, {});
  if (v.is_undefined()) return Value::iterator({});
  if (!v.is_dict()) throw TemplateError("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, item] : v.as_dict().entries) out.push_back(Value::list({Value(k), item}, true));
  return Value::iterator(std::move(out));
}

Value f_reverse(const Value& v, CallArgs& args) {
  args.expect("reverse", 0, {});
  if (v.is_string()) {
    std::u32string u = decode_utf8(v.as_string());
    std::reverse(u.begin(), u.end());
    return Value(encode_utf8(u));
  }
  std::vector<Value> items = items_of(v);
  std::reverse(items.begin(), items.end());
  if (v.is_list() && v.as_list().is_iterator) return Value::list(std::move(items));
  return Value::iterator(std::move(items));
}

// Stable sort by key, like Python's sorted(); reverse keeps equal items in input order.
std::vector<Value> sorted_by(std::vector<Value> items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reverse ? less_than(keys[b], keys[a]) : less_than(keys[a], keys[b]);
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (size_t i : order) out.push_back(std::move(items[i]));
  return out;
}

Value sort_key(const Value& item, const Value* attribute, bool case_sensitive) {
  if (!attribute || attribute->is_none()) return case_sensitive ? item : ignore_case(item);
  if (attribute->is_string() && attribute->as_string().find(',') != std::string::npos) {
    std::vector<Value> parts;
    for (const std::string& a : split_on(attribute->as_string(), ',')) {
      Value k = lookup_attribute(item, Value(a), nullptr);
      parts.push_back(case_sensitive ? k : ignore_case(k));
    }
    return Value::list(std::move(parts), true);
  }
  Value k = lookup_attribute(item, *attribute, nullptr);
  return case_sensitive ? k : ignore_case(k);
}

Value f_sort(const Value& seq, CallArgs& args) {
  args.expect("sort", 3, {"reverse", "case_sensitive", "attribute"});
  const Value* reverse = args.get(0, "reverse");
  const Value* cs = args.get(1, "case_sensitive");
  const Value* attribute = args.get(2, "attribute");
  std::vector<Value> items = items_of(seq);
  std::vector<Value> keys;
  for (const Value& item : items) keys.push_back(sort_key(item, attribute, cs && cs->truthy()));
  return Value::list(sorted_by(std::move(items), keys, reverse && reverse->truthy()));
}

Value f_dictsort(const Value& v, CallArgs& args) {
  args.expect("dictsort", 3, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) throw TemplateError("dictsort expects a mapping, got " + v.type_name());
  const Value* cs = args.get(0, "case_sensitive");
  const Value* by = args.get(1, "by");
  const Value* reverse = args.get(2, "reverse");
  std::string by_what = by ? to_str(*by) : "key";
  if (by_what != "key" && by_what != "value") throw TemplateError("You can only sort by either \"key\" or \"value\"");
  std::vector<Value> items, keys;
  for (const auto& [k, item] : v.as_dict().entries) {
    items.push_back(Value::list({Value(k), item}, true));
    const Value key = by_what == "key" ? Value(k) : item;
    keys.push_back(cs && cs->truthy() ? key : ignore_case(key));
  }
  return Value::list(sorted_by(std::move(items), keys, reverse && reverse->truthy()));
}

Value f_unique(const Value& seq, CallArgs& args) {
  args.expect("unique", 2, {"case_sensitive", "attribute"});
  const Value* cs = args.get(0, "case_sensitive");
  const Value* attribute = args.get(1, "attribute");
  std::vector<Value> out, seen;
  for (const Value& item : items_of(seq)) {
    Value key = sort_key(item, attribute, cs && cs->truthy());
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::iterator(std::move(out));
}

Value min_or_max(const Value& seq, CallArgs& args, bool want_max) {
  args.expect(want_max ? "max" : "min", 2, {"case_sensitive", "attribute"});
  const Value* cs = args.get(0, "case_sensitive");
  const Value* attribute = args.get(1, "attribute");
  std::vector<Value> items = items_of(seq);
  if (items.empty()) return Value::undefined_because("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = sort_key(items[0], attribute, cs && cs->truthy());
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = sort_key(items[i], attribute, cs && cs->truthy());
    if (want_max ? less_than(best_key, key) : less_than(key, best_key)) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}

Value f_min(const Value& v, CallArgs& a) { return min_or_max(v, a, false); }
Value f_max(const Value& v, CallArgs& a) { return min_or_max(v, a, true); }

Value f_sum(const Value& seq, CallArgs& args) {
  args.expect("sum", 2, {"attribute", "start"});
  const Value* attribute = args.get(0, "attribute");
  const Value* start = args.get(1, "start");
  Value total = start ? *start : Value(0);
  for (const Value& item : items_of(seq))
    total = arithmetic("+", total, attribute && !attribute->is_none() ? lookup_attribute(item, *attribute, nullptr) : item);
  return total;
}

Value f_batch(const Value& seq, CallArgs& args) {
  args.expect("batch", 2, {"linecount", "fill_with"});
  const Value* count = args.get(0, "linecount");
  if (!count || !count->is_int() || count->as_int() <= 0) throw TemplateError("batch: linecount must be a positive integer");
  const Value* fill = args.get(1, "fill_with");
  std::vector<Value> out, tmp;
  for (const Value& item : items_of(seq)) {
    if (static_cast<int64_t>(tmp.size()) == count->as_int()) {
      out.push_back(Value::list(std::move(tmp)));
      tmp.clear();
    }
    tmp.push_back(item);
  }
  if (!tmp.empty()) {
    if (fill && !fill->is_none())
      while (static_cast<int64_t>(tmp.size()) < count->as_int()) tmp.push_back(*fill);
    out.push_back(Value::list(std::move(tmp)));
  }
  return Value::iterator(std::move(out));
}

Value f_slice(const Value& seq, CallArgs& args) {
  args.expect("slice", 2, {"slices", "fill_with"});
  const Value* slices_v = args.get(0, "slices");
  if (!slices_v || !slices_v->is_int() || slices_v->as_int() <= 0) throw TemplateError("slice: slices must be a positive integer");
  const Value* fill = args.get(1, "fill_with");
  std::vector<Value> items = items_of(seq);
  const int64_t slices = slices_v->as_int(), n = static_cast<int64_t>(items.size());
  const int64_t per = n / slices, extra = n % slices;
  std::vector<Value> out;
  int64_t offset = 0;
  for (int64_t k = 0; k < slices; ++k) {
    int64_t start = offset + k * per;
    if (k < extra) ++offset;
    int64_t end = offset + (k + 1) * per;
    std::vector<Value> tmp(items.begin() + start, items.begin() + end);
    if (fill && !fill->is_none() && k >= extra) tmp.push_back(*fill);
    out.push_back(Value::list(std::move(tmp)));
  }
  return Value::iterator(std::move(out));
}

struct NamedFilter {
  std::string_view name;
  FilterFn fn;
};

constexpr NamedFilter kSequenceFilters[] = {
    {"batch", f_batch},   {"count", f_length},   {"dictsort", f_dictsort}, {"first", f_first},
    {"items", f_items},   {"join", f_join},      {"last", f_last},         {"length", f_length},
    {"list", f_list},     {"map", f_map},        {"max", f_max},           {"min", f_min},
    {"reject", f_reject}, {"rejectattr", f_rejectattr}, {"reverse", f_reverse}, {"select", f_select},
    {"selectattr", f_selectattr}, {"slice", f_slice}, {"sort", f_sort}, {"sum", f_sum},
    {"unique", f_unique},
};

}  // namespace sequence_filters_detail

FilterFn find_sequence_filter(std::string_view name) {
  for (const auto& f : sequence_filters_detail::kSequenceFilters)
    if (f.name == name) return f.fn;
  return nullptr;
}

}  // namespace distillery::text::jinja
