#include "data/text/json_node.h"

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace distillery::text {

namespace json_node_detail {

const char* json_type_name(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::number_float: return "a number";
    default: return "an unexpected value";
  }
}

}  // namespace json_node_detail

std::string JsonNode::child_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void JsonNode::fail(const std::string& what) const {
  DIST_FAIL(file_, ": ", path_.empty() ? std::string("(top level)") : path_, " ", what);
}

bool JsonNode::has(const char* key) const {
  if (!value_->is_object()) return false;
  const auto it = value_->find(key);
  return it != value_->end() && !it->is_null();
}

JsonNode JsonNode::at(const char* key) const {
  require_object();
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) {
    JsonNode(*value_, file_, child_path(key)).fail("is missing");
  }
  return JsonNode(*it, file_, child_path(key));
}

std::optional<JsonNode> JsonNode::find(const char* key) const {
  require_object();
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return std::nullopt;
  return JsonNode(*it, file_, child_path(key));
}

JsonNode JsonNode::at(size_t index) const {
  require_array();
  if (index >= value_->size()) fail("has no element " + std::to_string(index));
  return JsonNode((*value_)[index], file_, path_ + "[" + std::to_string(index) + "]");
}

size_t JsonNode::size() const { return value_->size(); }

std::string JsonNode::as_string() const {
  if (!value_->is_string()) fail(std::string("must be a string, not ") + json_node_detail::json_type_name(*value_));
  return value_->get<std::string>();
}

bool JsonNode::as_bool() const {
  if (!value_->is_boolean()) fail(std::string("must be true or false, not ") + json_node_detail::json_type_name(*value_));
  return value_->get<bool>();
}

int64_t JsonNode::as_int() const {
  if (!value_->is_number_integer()) fail(std::string("must be an integer, not ") + json_node_detail::json_type_name(*value_));
  return value_->get<int64_t>();
}

void JsonNode::require_object() const {
  if (!value_->is_object()) fail(std::string("must be an object, not ") + json_node_detail::json_type_name(*value_));
}

void JsonNode::require_array() const {
  if (!value_->is_array()) fail(std::string("must be an array, not ") + json_node_detail::json_type_name(*value_));
}

bool JsonNode::get_bool(const char* key, bool fallback) const {
  const auto node = find(key);
  return node ? node->as_bool() : fallback;
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DIST_CHECK(in.good(), path, ": cannot open file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's message starts with "[json.exception.parse_error.101] parse error at line..."
    std::string what = e.what();
    const auto pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    DIST_FAIL(path, ": invalid JSON: ", what);
  }
}

}  // namespace distillery::text
