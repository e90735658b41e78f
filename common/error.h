// Two kinds of failure (see docs/errors.md):
//   UserError  - bad input from a person: recipe, file, data line, shape. The message is one line
//                that names the file and key path or line; `main` prints it and exits 2.
//   DIST_ASSERT - a broken internal invariant (a bug). Throws with file:line; exit 1.
// Library code never prints and exits; only the CLI's main does.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace distillery {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& what) : std::runtime_error(what) {}
};

class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& what) : std::logic_error(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}
}  // namespace detail

}  // namespace distillery

// DIST_CHECK(cond, "file.jsonl:", line, ": expected ...") - user-facing check.
#define DIST_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) throw ::distillery::UserError(::distillery::detail::concat(__VA_ARGS__)); \
  } while (0)

#define DIST_FAIL(...) throw ::distillery::UserError(::distillery::detail::concat(__VA_ARGS__))

// DIST_ASSERT(cond, "details") - internal invariant; a failure is a bug in distillery.
#define DIST_ASSERT(cond, ...)                                                        \
  do {                                                                                \
    if (!(cond))                                                                      \
      throw ::distillery::InternalError(::distillery::detail::concat(                 \
          __FILE__, ":", __LINE__, ": internal error: " #cond " ", ##__VA_ARGS__));  \
  } while (0)
