// Command-line options of the `distillery` subcommands: --flag value pairs, --switches and
// positionals, every flag checked against the command's list (an unknown one is a UserError).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"

namespace distillery {

struct Args {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positional;
  std::string get(const std::string& k, const std::string& fallback = "") const {
    auto it = flags.find(k);
    return it == flags.end() ? fallback : it->second;
  }
  std::string need(const std::string& cmd, const std::string& k) const {
    auto it = flags.find(k);
    DIST_CHECK(it != flags.end() && !it->second.empty(), "distillery ", cmd, ": missing ", k);
    return it->second;
  }
  double number(const std::string& k, double fallback) const {
    auto it = flags.find(k);
    if (it == flags.end()) return fallback;
    try {
      size_t used = 0;
      const double v = std::stod(it->second, &used);
      if (used == it->second.size()) return v;
    } catch (const std::exception&) {
    }
    DIST_FAIL(k, ": expected a number, got '", it->second, "'");
  }
  int64_t integer(const std::string& k, int64_t fallback) const {
    auto it = flags.find(k);
    if (it == flags.end()) return fallback;
    try {
      size_t used = 0;
      int64_t v = std::stoll(it->second, &used);
      if (used == it->second.size()) return v;
    } catch (const std::exception&) {
    }
    DIST_FAIL(k, ": expected an integer, got '", it->second, "'");
  }
};

inline Args parse_args(const std::string& cmd, const std::vector<std::string>& argv, const std::vector<std::string>& valued,
                const std::vector<std::string>& switches = {}) {
  Args a;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& s = argv[i];
    if (s.rfind("--", 0) == 0) {
      if (std::find(switches.begin(), switches.end(), s) != switches.end()) {
        a.flags[s] = "1";
      } else if (std::find(valued.begin(), valued.end(), s) != valued.end()) {
        DIST_CHECK(i + 1 < argv.size(), "distillery ", cmd, ": ", s, " needs a value");
        a.flags[s] = argv[++i];
      } else {
        DIST_FAIL("distillery ", cmd, ": unknown option '", s, "'");
      }
    } else {
      a.positional.push_back(s);
    }
  }
  return a;
}


}  // namespace distillery
