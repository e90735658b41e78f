#include "trainer/model_config.h"

#include <filesystem>

#include "trainer/error.h"
#include "trainer/fs_util.h"

namespace distillery {
namespace {

template <class T>
T field(const nlohmann::json& j, const std::string& origin, const char* key, std::optional<T> fallback = {}) {
  if (!j.contains(key) || j[key].is_null()) {
    DIST_CHECK(fallback.has_value(), origin, ": missing required field '", key, "'");
    return *fallback;
  }
  try {
    return j[key].get<T>();
  } catch (const nlohmann::json::exception&) {
    DIST_FAIL(origin, ": field '", key, "' has the wrong type (", j[key].dump(), ")");
  }
}

}  // namespace

TransformerConfig TransformerConfig::from_json(const nlohmann::json& j, const std::string& origin) {
  DIST_CHECK(j.is_object(), origin, ": expected a JSON object");
  TransformerConfig c;
  c.raw = j;
  c.model_type = field<std::string>(j, origin, "model_type");
  const std::string& mt = c.model_type;
  DIST_CHECK(mt == "llama" || mt == "qwen2" || mt == "qwen3" || mt == "mistral", origin, ": model_type '", mt,
             "' is not supported (supported: llama, qwen2, qwen3, mistral)");
  c.vocab_size = field<int64_t>(j, origin, "vocab_size");
  c.hidden_size = field<int64_t>(j, origin, "hidden_size");
  c.intermediate_size = field<int64_t>(j, origin, "intermediate_size");
  c.num_hidden_layers = field<int64_t>(j, origin, "num_hidden_layers");
  c.num_attention_heads = field<int64_t>(j, origin, "num_attention_heads");
  c.num_key_value_heads = field<int64_t>(j, origin, "num_key_value_heads", c.num_attention_heads);
  DIST_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0 &&
                 c.num_attention_heads > 0 && c.num_key_value_heads > 0,
             origin, ": sizes must be positive");
  c.head_dim = field<int64_t>(j, origin, "head_dim", c.hidden_size / c.num_attention_heads);
  if (!j.contains("head_dim") || j["head_dim"].is_null())
    DIST_CHECK(c.hidden_size % c.num_attention_heads == 0, origin, ": hidden_size=", c.hidden_size,
               " is not divisible by num_attention_heads=", c.num_attention_heads);
  DIST_CHECK(c.head_dim % 2 == 0, origin, ": head_dim=", c.head_dim, " must be even for rotary embeddings");
  DIST_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, origin,
             ": num_attention_heads=", c.num_attention_heads,
             " is not a multiple of num_key_value_heads=", c.num_key_value_heads);
  c.max_position_embeddings = field<int64_t>(j, origin, "max_position_embeddings", 4096);
  c.rms_norm_eps = field<double>(j, origin, "rms_norm_eps", 1e-6);
  c.rope_theta = field<double>(j, origin, "rope_theta", 10000.0);
  c.initializer_range = field<double>(j, origin, "initializer_range", 0.02);
  c.tie_word_embeddings = field<bool>(j, origin, "tie_word_embeddings", false);

  const std::string act = field<std::string>(j, origin, "hidden_act", std::string("silu"));
  DIST_CHECK(act == "silu", origin, ": hidden_act '", act, "' is not supported (supported: silu)");
  const double attn_dropout = field<double>(j, origin, "attention_dropout", 0.0);
  DIST_CHECK(attn_dropout == 0.0, origin, ": attention_dropout=", attn_dropout, " is not supported (use 0.0)");

  const bool attention_bias = field<bool>(j, origin, "attention_bias", false);
  if (mt == "qwen2") {
    c.qkv_bias = true;  // Qwen2 always has q/k/v biases and never an o_proj bias
  } else if (mt == "llama" || mt == "qwen3") {
    c.qkv_bias = c.o_bias = attention_bias;
  }
  if (mt == "llama") c.mlp_bias = field<bool>(j, origin, "mlp_bias", false);
  c.qk_norm = mt == "qwen3";

  if (mt == "mistral") {
    if (j.contains("sliding_window") && !j["sliding_window"].is_null())
      c.sliding_window = field<int64_t>(j, origin, "sliding_window");
  } else if (mt == "qwen2" || mt == "qwen3") {
    if (field<bool>(j, origin, "use_sliding_window", false)) {
      const int64_t max_window_layers = field<int64_t>(j, origin, "max_window_layers", c.num_hidden_layers);
      DIST_CHECK(max_window_layers >= c.num_hidden_layers, origin,
                 ": use_sliding_window with max_window_layers < num_hidden_layers is not supported");
      c.sliding_window = field<int64_t>(j, origin, "sliding_window");
    }
  }
  if (c.sliding_window) DIST_CHECK(*c.sliding_window > 0, origin, ": sliding_window must be positive");

  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const auto& rs = j["rope_scaling"];
    const std::string where = origin + ": rope_scaling";
    DIST_CHECK(rs.is_object(), where, " must be an object or null");
    std::string type = rs.contains("rope_type") ? field<std::string>(rs, where, "rope_type")
                                                : field<std::string>(rs, where, "type", std::string("default"));
    DIST_CHECK(type == "default" || type == "linear" || type == "llama3", where, ": rope_type '", type,
               "' is not supported (supported: default, linear, llama3)");
    c.rope_scaling.type = type;
    if (type != "default") c.rope_scaling.factor = field<double>(rs, where, "factor");
    if (type == "llama3") {
      c.rope_scaling.low_freq_factor = field<double>(rs, where, "low_freq_factor");
      c.rope_scaling.high_freq_factor = field<double>(rs, where, "high_freq_factor");
      c.rope_scaling.original_max_position_embeddings =
          field<int64_t>(rs, where, "original_max_position_embeddings");
      DIST_CHECK(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor, where,
                 ": high_freq_factor must exceed low_freq_factor");
    }
  }
  return c;
}

TransformerConfig TransformerConfig::load(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  DIST_CHECK(std::filesystem::exists(path), path, ": not found (model.path must be a Hugging Face model directory)");
  return from_json(read_json_file(path), path);
}

}  // namespace distillery
