#include "data/text/token_decoder.h"

#include <utility>

#include "data/text/byte_level.h"
#include "data/text/regex.h"
#include "data/text/utf8.h"

namespace distillery::text {

namespace token_decoder_detail {

// Joins the bytes the tokens stand for and decodes them, replacing broken UTF-8 with U+FFFD;
// a token with characters outside the byte-level alphabet (an added token such as
// "<｜begin▁of▁sentence｜>") contributes its own UTF-8 bytes.
class ByteLevelDecoder final : public TokenDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& token : tokens) {
      const size_t mark = bytes.size();
      if (!byte_level::unmap_chars(token, bytes)) {
        bytes.resize(mark);
        bytes += token;
      }
    }
    tokens.assign(1, utf8::decode_lossy(bytes));
  }
};

class SequenceDecoder final : public TokenDecoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<TokenDecoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<TokenDecoder>> steps_;
};

class ReplaceDecoder final : public TokenDecoder {
 public:
  ReplaceDecoder(std::unique_ptr<Regex> regex, std::string content) : regex_(std::move(regex)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    for (auto& token : tokens) {
      matches.clear();
      regex_->find_all(token, matches);
      if (matches.empty()) continue;
      std::string out;
      size_t last = 0;
      for (const auto& [b, e] : matches) {
        out.append(token, last, b - last);
        out += content_;
        last = e;
      }
      out.append(token, last, std::string::npos);
      token.swap(out);
    }
  }

 private:
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class FuseDecoder final : public TokenDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const auto& t : tokens) joined += t;
    tokens.assign(1, joined);
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from each token.
class StripDecoder final : public TokenDecoder {
 public:
  StripDecoder(uint32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& token : tokens) {
      std::vector<uint32_t> chars;
      for (size_t i = 0; i < token.size();) chars.push_back(utf8::next(token, i));
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < chars.size() && chars[i] == content_; ++i) start_cut = i + 1;
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size() && chars[chars.size() - i - 1] == content_; ++i) {
        stop_cut = chars.size() - i - 1;
      }
      std::string out;
      for (size_t i = start_cut; i < stop_cut; ++i) utf8::append(out, chars[i]);
      token.swap(out);
    }
  }

 private:
  uint32_t content_;
  size_t start_, stop_;
};

// Joins runs of "<0xXX>" tokens into the text their bytes spell (U+FFFD per byte if invalid).
class ByteFallbackDecoder final : public TokenDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (utf8::find_invalid(pending) == std::string::npos) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (auto& token : tokens) {
      int byte = -1;
      if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>') byte = hex_byte(token[3], token[4]);
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens.swap(out);
  }

 private:
  static int hex_byte(char hi, char lo) {
    auto v = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    return v(hi) < 0 || v(lo) < 0 ? -1 : v(hi) * 16 + v(lo);
  }
};

// Classic BPE end-of-word suffix: "</w>" becomes a space, except at the very end.
class BpeSuffixDecoder final : public TokenDecoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string replacement = i + 1 == tokens.size() ? "" : " ";
      std::string out;
      size_t pos = 0, hit;
      while (!suffix_.empty() && (hit = tokens[i].find(suffix_, pos)) != std::string::npos) {
        out.append(tokens[i], pos, hit - pos);
        out += replacement;
        pos = hit + suffix_.size();
      }
      out.append(tokens[i], pos, std::string::npos);
      tokens[i].swap(out);
    }
  }

 private:
  std::string suffix_;
};

}  // namespace token_decoder_detail

std::unique_ptr<TokenDecoder> TokenDecoder::parse(const JsonNode& node) {
  namespace d = token_decoder_detail;
  const std::string type = node.type();
  if (type == "ByteLevel") return std::make_unique<d::ByteLevelDecoder>();
  if (type == "Sequence") {
    const JsonNode list = node.at("decoders");
    list.require_array();
    std::vector<std::unique_ptr<TokenDecoder>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(parse(list.at(i)));
    return std::make_unique<d::SequenceDecoder>(std::move(steps));
  }
  if (type == "Replace") {
    return std::make_unique<d::ReplaceDecoder>(regex_from_pattern_json(node.at("pattern")), node.get_string("content"));
  }
  if (type == "Fuse") return std::make_unique<d::FuseDecoder>();
  if (type == "Strip") {
    const std::string content = node.get_string("content");
    size_t i = 0;
    const uint32_t ch = content.empty() ? 0 : utf8::next(content, i);
    if (content.empty() || i != content.size()) node.at("content").fail("must be a single character");
    const auto count = [&](const char* key) {
      const int64_t v = node.at(key).as_int();
      if (v < 0) node.at(key).fail("must not be negative");
      return static_cast<size_t>(v);
    };
    return std::make_unique<d::StripDecoder>(ch, count("start"), count("stop"));
  }
  if (type == "ByteFallback") return std::make_unique<d::ByteFallbackDecoder>();
  if (type == "BPEDecoder") {
    const auto suffix = node.find("suffix");
    return std::make_unique<d::BpeSuffixDecoder>(suffix ? suffix->as_string() : std::string("</w>"));
  }
  node.at("type").fail("'" + type + "' is not supported");
}

}  // namespace distillery::text
