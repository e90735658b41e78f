#include "models/peft/target_modules.h"

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <algorithm>
#include <memory>

#include "models/peft/lora_config.h"
#include "common/error.h"

namespace distillery::lora {

bool is_regex_entry(const std::string& entry) { return entry.find_first_of("\\^$*+?()[]{}|") != std::string::npos; }

namespace target_detail {

// Python's re.fullmatch: PCRE2 anchored at both ends (PCRE2 accepts the Python syntax PEFT users write).
bool regex_fullmatch(const std::string& pattern, const std::string& subject) {
  int err = 0;
  PCRE2_SIZE err_at = 0;
  std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)> code(
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                    &err, &err_at, nullptr),
      &pcre2_code_free);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    DIST_FAIL("target regex '", pattern, "' is invalid at offset ", err_at, ": ", reinterpret_cast<const char*>(msg));
  }
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(code.get(), nullptr), &pcre2_match_data_free);
  return pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(subject.c_str()), subject.size(), 0, 0, md.get(),
                     nullptr) >= 0;
}

}  // namespace target_detail

bool entry_matches(const std::string& entry, const std::string& full_name) {
  if (is_regex_entry(entry)) return target_detail::regex_fullmatch(entry, full_name);
  if (full_name == entry) return true;
  return full_name.size() > entry.size() && full_name.compare(full_name.size() - entry.size(), entry.size(), entry) == 0 &&
         full_name[full_name.size() - entry.size() - 1] == '.';
}

std::vector<std::string> short_names(const std::vector<std::string>& full_names) {
  std::vector<std::string> out;
  for (const auto& n : full_names) {
    const auto dot = n.rfind('.');
    std::string s = dot == std::string::npos ? n : n.substr(dot + 1);
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

std::vector<std::string> select_targets(const std::vector<std::string>& targets,
                                        const std::vector<std::string>& linear_names,
                                        const std::string& output_layer, const std::string& key) {
  DIST_CHECK(!targets.empty(), key, ": empty; name the modules to adapt (e.g. [q_proj, v_proj]) or all-linear");
  const bool all_linear = std::find(targets.begin(), targets.end(), kAllLinear) != targets.end();
  DIST_CHECK(!all_linear || targets.size() == 1, key, ": all-linear must be the only entry");
  size_t regexes = 0;
  for (const auto& t : targets) regexes += is_regex_entry(t);
  DIST_CHECK(regexes == 0 || targets.size() == 1, key,
             ": a regular expression must be the only entry (PEFT takes a list of names or one regex)");
  if (regexes) {
    try {
      target_detail::regex_fullmatch(targets[0], "");  // compile it once here, to name the key
    } catch (const UserError& e) {
      DIST_FAIL(key, ": ", e.what());
    }
  }
  auto listing = [&]() {
    std::string s;
    for (const auto& n : short_names(linear_names)) s += (s.empty() ? "" : ", ") + n;
    return s + (linear_names.empty() ? "" : " (full names like '" + linear_names.front() + "')");
  };
  std::vector<std::string> out;
  if (all_linear) {
    for (const auto& n : linear_names)
      if (n != output_layer) out.push_back(n);
    DIST_CHECK(!out.empty(), key, ": all-linear found no linear module besides ", output_layer);
    return out;
  }
  std::string unmatched;  // every entry that matches nothing, named at once
  for (const auto& t : targets) {
    bool any = false;
    for (const auto& n : linear_names) {
      if (!entry_matches(t, n)) continue;
      any = true;
      if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
    if (!any) unmatched += (unmatched.empty() ? "'" : ", '") + t + "'";
  }
  DIST_CHECK(unmatched.empty(), key, ": ", unmatched, unmatched.find(',') == std::string::npos ? " matches" : " match",
             " no linear module of the model; its linear modules are ", listing());
  // Keep the model's module order whatever the order of the entries.
  std::vector<std::string> ordered;
  for (const auto& n : linear_names)
    if (std::find(out.begin(), out.end(), n) != out.end()) ordered.push_back(n);
  return ordered;
}

}  // namespace distillery::lora
