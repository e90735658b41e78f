// A position inside a parsed JSON file that remembers how it was reached, so every complaint
// about tokenizer.json / tokenizer_config.json names the file and the JSON path:
//   "/m/tokenizer.json: pre_tokenizer.pretokenizers[1].type 'Metaspace' is not supported"
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace distillery::text {

class JsonNode {
 public:
  JsonNode(const nlohmann::json& value, std::string file, std::string path = "")
      : value_(&value), file_(std::move(file)), path_(std::move(path)) {}

  const nlohmann::json& value() const { return *value_; }
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }

  // Present and not null.
  bool has(const char* key) const;
  // Required member: fails when this is not an object or the member is missing or null.
  JsonNode at(const char* key) const;
  // Optional member: nullopt when missing or null.
  std::optional<JsonNode> find(const char* key) const;
  // Array element (this must be an array).
  JsonNode at(size_t index) const;
  size_t size() const;

  bool is_string() const { return value_->is_string(); }
  bool is_object() const { return value_->is_object(); }
  bool is_array() const { return value_->is_array(); }

  // This node as a typed value; fails naming the path when the type is wrong.
  std::string as_string() const;
  bool as_bool() const;
  int64_t as_int() const;
  void require_object() const;
  void require_array() const;

  // Typed member access with a fallback for missing/null members.
  std::string get_string(const char* key) const { return at(key).as_string(); }
  bool get_bool(const char* key, bool fallback) const;

  // The "type" member of a component (e.g. "BPE", "Split").
  std::string type() const { return at("type").as_string(); }

  // "<file>: <path> <what>" as a UserError.
  [[noreturn]] void fail(const std::string& what) const;

 private:
  std::string child_path(const std::string& key) const;

  const nlohmann::json* value_;
  std::string file_;
  std::string path_;
};

// Reads and parses a JSON file; a missing file or a syntax error is a UserError naming it.
nlohmann::json read_json_file(const std::string& path);

}  // namespace distillery::text
