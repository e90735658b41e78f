#include "data/text/post_processor.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <utility>

namespace distillery::text {

namespace post_processor_detail {

// One element of a template: the input sequence, or the ids of a special token.
struct TemplatePiece {
  bool is_sequence = false;
  std::vector<int32_t> ids;  // special token ids
};

class TemplateProcessor final : public PostProcessor {
 public:
  explicit TemplateProcessor(std::vector<TemplatePiece> single) : single_(std::move(single)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    std::vector<int32_t> out;
    for (const auto& piece : single_) {
      if (piece.is_sequence) out.insert(out.end(), ids.begin(), ids.end());
      else out.insert(out.end(), piece.ids.begin(), piece.ids.end());
    }
    ids.swap(out);
  }

 private:
  std::vector<TemplatePiece> single_;
};

class NoIdChanges final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& step : steps_) step->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

// A template piece written as a string: "$A", "$B:1", "$0", "[CLS]", "<s>:0".
TemplatePiece parse_piece_string(const JsonNode& node, std::string* special_name) {
  std::string s = node.as_string();
  const size_t colon = s.find(':');
  if (colon != std::string::npos) s = s.substr(0, colon);
  TemplatePiece piece;
  if (!s.empty() && s[0] == '$') {
    const std::string rest = s.substr(1);
    if (rest.empty() || rest == "A" || std::all_of(rest.begin(), rest.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
      piece.is_sequence = true;
      return piece;
    }
    if (rest == "B") node.fail("uses $B, which only a pair of sequences has");
    node.fail("'" + node.as_string() + "' is not a template piece");
  }
  *special_name = s;
  return piece;
}

std::unique_ptr<PostProcessor> parse_template(const JsonNode& node) {
  std::map<std::string, std::vector<int32_t>> specials;
  if (const auto tokens = node.find("special_tokens")) {
    tokens->require_object();
    for (const auto& [name, value] : tokens->value().items()) {
      const JsonNode token(value, tokens->file(), tokens->path() + "." + name);
      const JsonNode ids = token.at("ids");
      ids.require_array();
      std::vector<int32_t> list;
      for (size_t i = 0; i < ids.size(); ++i) list.push_back(static_cast<int32_t>(ids.at(i).as_int()));
      specials[name] = list;
    }
  }
  const JsonNode single = node.at("single");
  single.require_array();
  std::vector<TemplatePiece> pieces;
  for (size_t i = 0; i < single.size(); ++i) {
    const JsonNode item = single.at(i);
    std::string special_name;
    TemplatePiece piece;
    if (item.is_string()) {
      piece = parse_piece_string(item, &special_name);
    } else if (const auto seq = item.find("Sequence")) {
      const std::string id = seq->get_string("id");
      if (id == "B") seq->at("id").fail("is B, which only a pair of sequences has");
      if (id != "A") seq->at("id").fail("must be A or B");
      piece.is_sequence = true;
    } else if (const auto special = item.find("SpecialToken")) {
      special_name = special->get_string("id");
    } else {
      item.fail("must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
    if (!piece.is_sequence) {
      const auto it = specials.find(special_name);
      if (it == specials.end()) item.fail("names special token '" + special_name + "', which special_tokens does not define");
      piece.ids = it->second;
    }
    pieces.push_back(std::move(piece));
  }
  return std::make_unique<TemplateProcessor>(std::move(pieces));
}

// ["<s>", 0] as used by RobertaProcessing and BertProcessing.
int32_t token_pair_id(const JsonNode& node) {
  node.require_array();
  if (node.size() != 2) node.fail("must be [token, id]");
  return static_cast<int32_t>(node.at(1).as_int());
}

}  // namespace post_processor_detail

std::unique_ptr<PostProcessor> PostProcessor::parse(const JsonNode& node) {
  namespace d = post_processor_detail;
  const std::string type = node.type();
  if (type == "TemplateProcessing") return d::parse_template(node);
  if (type == "ByteLevel") return std::make_unique<d::NoIdChanges>();
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    std::vector<d::TemplatePiece> pieces(3);
    pieces[0].ids = {d::token_pair_id(node.at("cls"))};
    pieces[1].is_sequence = true;
    pieces[2].ids = {d::token_pair_id(node.at("sep"))};
    return std::make_unique<d::TemplateProcessor>(std::move(pieces));
  }
  if (type == "Sequence") {
    const JsonNode list = node.at("processors");
    list.require_array();
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list.size(); ++i) steps.push_back(parse(list.at(i)));
    return std::make_unique<d::SequenceProcessor>(std::move(steps));
  }
  node.at("type").fail("'" + type + "' is not supported");
}

std::unique_ptr<PostProcessor> PostProcessor::bos_eos(std::optional<int32_t> bos, std::optional<int32_t> eos) {
  namespace d = post_processor_detail;
  std::vector<d::TemplatePiece> pieces;
  if (bos) pieces.push_back({false, {*bos}});
  pieces.push_back({true, {}});
  if (eos) pieces.push_back({false, {*eos}});
  return std::make_unique<d::TemplateProcessor>(std::move(pieces));
}

}  // namespace distillery::text
