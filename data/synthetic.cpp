#include "data/synthetic.h"

#include <random>
#include <regex>

#include "common/error.h"

namespace distillery {
namespace {

int64_t draw(std::mt19937_64& rng, int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(rng() % (hi - lo + 1)); }

int64_t pow10(int64_t d) {
  int64_t p = 1;
  while (d-- > 0) p *= 10;
  return p;
}

TaskRecord arithmetic(std::mt19937_64& rng, int64_t digits) {
  const int64_t a = draw(rng, 0, pow10(digits) - 1), b = draw(rng, 0, pow10(digits) - 1);
  const int op = static_cast<int>(rng() % 3);
  const char sym = "+-*"[op];
  const int64_t r = op == 0 ? a + b : op == 1 ? a - b : a * b;
  TaskRecord t;
  t.prompt = "What is " + std::to_string(a) + sym + std::to_string(b) + "? ";
  t.answer = std::to_string(r);
  t.completion = t.answer;
  return t;
}

// Countdown: numbers n0..nk and a target reachable by folding them left to right with + - *.
TaskRecord countdown(std::mt19937_64& rng, int64_t count) {
  std::vector<int64_t> nums;
  for (int64_t i = 0; i < count; ++i) nums.push_back(draw(rng, 1, 20));
  std::string expr = std::to_string(nums[0]);
  int64_t value = nums[0];
  for (size_t i = 1; i < nums.size(); ++i) {
    const int op = static_cast<int>(rng() % 3);
    expr = (i > 1 ? "(" + expr + ")" : expr) + "+-*"[op] + std::to_string(nums[i]);
    value = op == 0 ? value + nums[i] : op == 1 ? value - nums[i] : value * nums[i];
  }
  TaskRecord t;
  t.prompt = "Using";
  for (auto n : nums) t.prompt += " " + std::to_string(n);
  t.prompt += " make " + std::to_string(value) + ": ";
  t.completion = expr;
  t.answer = std::to_string(value);
  return t;
}

// Evaluates + - * with parentheses over integers; false on anything else.
struct ExprParser {
  const std::string& s;
  size_t i = 0;
  std::vector<int64_t> used;
  bool ok = true;
  void ws() { while (i < s.size() && s[i] == ' ') ++i; }
  int64_t atom() {
    ws();
    if (i < s.size() && s[i] == '(') {
      ++i;
      int64_t v = sum();
      ws();
      if (i < s.size() && s[i] == ')') ++i; else ok = false;
      return v;
    }
    if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) { ok = false; return 0; }
    int64_t v = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) v = v * 10 + (s[i++] - '0');
    used.push_back(v);
    return v;
  }
  int64_t product() {
    int64_t v = atom();
    for (ws(); ok && i < s.size() && s[i] == '*'; ws()) ++i, v *= atom();
    return v;
  }
  int64_t sum() {
    int64_t v = product();
    for (ws(); ok && i < s.size() && (s[i] == '+' || s[i] == '-'); ws()) {
      const char op = s[i++];
      const int64_t r = product();
      v = op == '+' ? v + r : v - r;
    }
    return v;
  }
};

}  // namespace

std::vector<TaskRecord> make_task(const std::string& task, int64_t n, int64_t digits, uint64_t seed) {
  DIST_CHECK(task == "arithmetic" || task == "countdown", "unknown task '", task, "' (arithmetic, countdown)");
  DIST_CHECK(digits >= 1 && digits <= 9, "--digits must be in [1, 9]");
  std::mt19937_64 rng(seed);
  std::vector<TaskRecord> out;
  for (int64_t k = 0; k < n; ++k) out.push_back(task == "arithmetic" ? arithmetic(rng, digits) : countdown(rng, digits + 1));
  return out;
}

bool verify_task_answer(const std::string& task, const TaskRecord& rec, const std::string& completion) {
  if (task == "arithmetic") {
    std::smatch m;
    static const std::regex number("-?[0-9]+");
    return std::regex_search(completion, m, number) && m.str() == rec.answer;
  }
  // countdown: the expression must use exactly the given numbers and evaluate to the target.
  std::string expr = completion.substr(0, completion.find('\n'));
  ExprParser p{expr};
  const int64_t v = p.sum();
  p.ws();
  if (!p.ok || p.i != expr.size() || std::to_string(v) != rec.answer) return false;
  std::vector<int64_t> given;
  std::regex num("[0-9]+");
  const std::string head = rec.prompt.substr(0, rec.prompt.find(" make "));
  for (std::sregex_iterator it(head.begin(), head.end(), num), end; it != end; ++it) given.push_back(std::stoll(it->str()));
  std::sort(given.begin(), given.end());
  std::sort(p.used.begin(), p.used.end());
  return given == p.used;
}

nlohmann::json byte_level_tokenized(const TaskRecord& rec) {
  std::vector<int> ids, labels;
  for (unsigned char c : rec.prompt) ids.push_back(c), labels.push_back(-100);
  for (unsigned char c : rec.completion + "\n") ids.push_back(c), labels.push_back(c);
  return {{"input_ids", ids}, {"labels", labels}};
}

}  // namespace distillery
