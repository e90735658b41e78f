// What a key missing from config.json means: the defaults of transformers' configuration class
// for each supported model_type (transformers 4.57; docs/models.md lists them and the source).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace distillery {

// The supported model_type names, in the order docs and error messages list them.
const std::vector<std::string>& supported_model_types();

// model_type -> {key: default} for every config.json key distillery reads for that family. A null
// default is transformers' None (e.g. num_key_value_heads: None means num_attention_heads). A key
// the family's transformers class does not have is absent, except the few the family's own
// modelling code fixes (documented in the table). An unsupported model_type -> nullptr.
const nlohmann::json* family_defaults(const std::string& model_type);

}  // namespace distillery
