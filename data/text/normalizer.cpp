#include "data/text/normalizer.h"

#include <utility>
#include <vector>

#include "data/text/byte_level.h"
#include "data/text/regex.h"
#include "data/text/unicode_normalization.h"
#include "data/text/utf8.h"

namespace distillery::text {

namespace normalizer_detail {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) : form_(form) {}
  bool normalize(std::string_view in, std::string& out) const override { return unicode_normalize(form_, in, out); }

 private:
  UnicodeForm form_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  bool normalize(std::string_view in, std::string& out) const override {
    bool changed = false;
    std::string current, next;
    for (const auto& step : steps_) {
      if (!step->normalize(changed ? std::string_view(current) : in, next)) continue;
      current.swap(next);
      changed = true;
    }
    if (changed) out = std::move(current);
    return changed;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// Replaces every match of a pattern (a literal string or a regex) with `content`.
class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> regex, std::string content)
      : regex_(std::move(regex)), content_(std::move(content)) {}
  bool normalize(std::string_view in, std::string& out) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    regex_->find_all(in, matches);
    if (matches.empty()) return false;
    out.clear();
    size_t last = 0;
    for (const auto& [b, e] : matches) {
      out.append(in.substr(last, b - last));
      out.append(content_);
      last = e;
    }
    out.append(in.substr(last));
    return true;
  }

 private:
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  bool normalize(std::string_view in, std::string& out) const override {
    if (in.empty() || prefix_.empty()) return false;
    out = prefix_;
    out.append(in);
    return true;
  }

 private:
  std::string prefix_;
};

// Removes leading and/or trailing White_Space characters.
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  bool normalize(std::string_view in, std::string& out) const override {
    size_t begin = 0, end = in.size();
    if (left_) {
      while (begin < end) {
        size_t k = begin;
        if (!is_white_space(utf8::next(in, k))) break;
        begin = k;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t k = end;
        if (!is_white_space(utf8::prev(in, k))) break;
        end = k;
      }
    }
    if (begin == 0 && end == in.size()) return false;
    out.assign(in.substr(begin, end - begin));
    return true;
  }

 private:
  bool left_, right_;
};

// Shows every byte as a character of the byte-level alphabet.
class ByteLevelNormalizer final : public Normalizer {
 public:
  bool normalize(std::string_view in, std::string& out) const override {
    if (in.empty()) return false;
    out.clear();
    byte_level::map_bytes(in, out);
    return out != in;
  }
};

}  // namespace normalizer_detail

std::string Normalizer::apply(std::string_view in) const {
  std::string out;
  return normalize(in, out) ? out : std::string(in);
}

std::unique_ptr<Normalizer> Normalizer::parse(const JsonNode& node) {
  namespace d = normalizer_detail;
  const std::string type = node.type();
  if (type == "NFC") return std::make_unique<d::UnicodeNormalizer>(UnicodeForm::kNFC);
  if (type == "NFD") return std::make_unique<d::UnicodeNormalizer>(UnicodeForm::kNFD);
  if (type == "NFKC") return std::make_unique<d::UnicodeNormalizer>(UnicodeForm::kNFKC);
  if (type == "NFKD") return std::make_unique<d::UnicodeNormalizer>(UnicodeForm::kNFKD);
  if (type == "Sequence") {
    const JsonNode list = node.at("normalizers");
    list.require_array();
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(parse(list.at(i)));
    return std::make_unique<d::SequenceNormalizer>(std::move(steps));
  }
  if (type == "Replace") {
    return std::make_unique<d::ReplaceNormalizer>(regex_from_pattern_json(node.at("pattern")), node.get_string("content"));
  }
  if (type == "Prepend") return std::make_unique<d::PrependNormalizer>(node.get_string("prepend"));
  if (type == "Strip") {
    return std::make_unique<d::StripNormalizer>(node.get_bool("strip_left", true), node.get_bool("strip_right", true));
  }
  if (type == "ByteLevel") return std::make_unique<d::ByteLevelNormalizer>();
  node.at("type").fail("'" + type + "' is not supported");
}

}  // namespace distillery::text
