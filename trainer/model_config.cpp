#include "trainer/model_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "trainer/error.h"
#include "trainer/fs_util.h"

namespace distillery {
namespace model_json {

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

bool has(const nlohmann::json& j, const char* key) { return j.contains(key) && !j[key].is_null(); }

// yarn_get_mscale of DeepSeek / Hugging Face: the attention temperature for a context stretched by `scale`.
double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

void parse_rope_scaling(const nlohmann::json& j, const std::string& origin, TransformerConfig& c) {
  if (!has(j, "rope_scaling")) return;
  const auto& rs = j["rope_scaling"];
  const std::string where = origin + ": rope_scaling";
  DIST_CHECK(rs.is_object(), where, " must be an object or null");
  std::string type = rs.contains("rope_type") ? field<std::string>(rs, where, "rope_type")
                                              : field<std::string>(rs, where, "type", std::string("default"));
  DIST_CHECK(type == "default" || type == "linear" || type == "llama3" || type == "yarn", where, ": rope_type '",
             type, "' is not supported (supported: default, linear, llama3, yarn)");
  auto& s = c.rope_scaling;
  s.type = type;
  if (type == "linear" || type == "llama3") s.factor = field<double>(rs, where, "factor");
  if (type == "llama3") {
    s.low_freq_factor = field<double>(rs, where, "low_freq_factor");
    s.high_freq_factor = field<double>(rs, where, "high_freq_factor");
    s.original_max_position_embeddings = field<int64_t>(rs, where, "original_max_position_embeddings");
    DIST_CHECK(s.high_freq_factor > s.low_freq_factor, where, ": high_freq_factor must exceed low_freq_factor");
  }
  if (type == "yarn") {
    // As Hugging Face's _compute_yarn_parameters: the correction range is measured against the
    // pretraining context; `factor` defaults to the ratio of the two contexts.
    s.original_max_position_embeddings =
        field<int64_t>(rs, where, "original_max_position_embeddings", c.max_position_embeddings);
    DIST_CHECK(s.original_max_position_embeddings > 0, where, ": original_max_position_embeddings must be positive");
    s.factor = field<double>(rs, where, "factor",
                             static_cast<double>(c.max_position_embeddings) / s.original_max_position_embeddings);
    DIST_CHECK(s.factor > 0, where, ": factor must be positive");
    const double beta_fast = field<double>(rs, where, "beta_fast", 0.0), beta_slow = field<double>(rs, where, "beta_slow", 0.0);
    s.beta_fast = beta_fast != 0 ? beta_fast : 32.0;  // `or 32` in Hugging Face: 0 means the default too
    s.beta_slow = beta_slow != 0 ? beta_slow : 1.0;
    s.mscale = field<double>(rs, where, "mscale", 0.0);
    s.mscale_all_dim = field<double>(rs, where, "mscale_all_dim", 0.0);
    s.truncate = field<bool>(rs, where, "truncate", true);
    if (has(rs, "attention_factor"))
      s.attention_factor = field<double>(rs, where, "attention_factor");
    else if (s.mscale != 0 && s.mscale_all_dim != 0)
      s.attention_factor = yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim);
    else
      s.attention_factor = yarn_mscale(s.factor, 1.0);
  }
}

// Which layers are sparse: Qwen's decoder_sparse_step / mlp_only_layers, DeepSeek's
// first_k_dense_replace / moe_layer_freq.
void parse_sparse_layers(const nlohmann::json& j, const std::string& origin, TransformerConfig& c) {
  auto& m = c.moe;
  m.sparse_layer.assign(c.num_hidden_layers, m.enabled());
  if (!m.enabled()) return;
  const std::string& mt = c.model_type;
  if (mt == "qwen2_moe" || mt == "qwen3_moe") {
    const int64_t step = field<int64_t>(j, origin, "decoder_sparse_step", 1);
    DIST_CHECK(step >= 1, origin, ": decoder_sparse_step must be >= 1 (got ", step, ")");
    const auto only = field<std::vector<int64_t>>(j, origin, "mlp_only_layers", std::vector<int64_t>{});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      m.sparse_layer[i] = (i + 1) % step == 0 && std::find(only.begin(), only.end(), i) == only.end();
  } else if (mt == "deepseek_v2" || mt == "deepseek_v3") {
    const int64_t first_dense = field<int64_t>(j, origin, "first_k_dense_replace", mt == "deepseek_v3" ? 3 : 0);
    const int64_t freq = field<int64_t>(j, origin, "moe_layer_freq", 1);
    DIST_CHECK(freq >= 1, origin, ": moe_layer_freq must be >= 1 (got ", freq, ")");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) m.sparse_layer[i] = i >= first_dense && i % freq == 0;
  }
}

void parse_moe(const nlohmann::json& j, const std::string& origin, TransformerConfig& c) {
  const std::string& mt = c.model_type;
  auto& m = c.moe;
  if (mt == "mixtral") {
    m.num_experts = field<int64_t>(j, origin, "num_local_experts");
    m.num_experts_per_tok = field<int64_t>(j, origin, "num_experts_per_tok", 2);
    m.moe_intermediate_size = c.intermediate_size;
    m.norm_topk_prob = true;  // Mixtral: softmax over the selected logits
    m.router_jitter_noise = field<double>(j, origin, "router_jitter_noise", 0.0);
    DIST_CHECK(m.router_jitter_noise >= 0 && m.router_jitter_noise < 1, origin, ": router_jitter_noise=",
               m.router_jitter_noise, " must be in [0, 1)");
    m.router_aux_loss_coef = field<double>(j, origin, "router_aux_loss_coef", 0.001);
    m.block_name = "block_sparse_moe";
    m.w123_names = true;
  } else if (mt == "qwen2_moe" || mt == "qwen3_moe") {
    m.num_experts = field<int64_t>(j, origin, "num_experts");
    m.num_experts_per_tok = field<int64_t>(j, origin, "num_experts_per_tok", mt == "qwen2_moe" ? 4 : 8);
    m.moe_intermediate_size = field<int64_t>(j, origin, "moe_intermediate_size");
    m.norm_topk_prob = field<bool>(j, origin, "norm_topk_prob", false);
    m.router_aux_loss_coef = field<double>(j, origin, "router_aux_loss_coef", 0.001);
    if (mt == "qwen2_moe") {
      m.shared_intermediate_size = field<int64_t>(j, origin, "shared_expert_intermediate_size");
      DIST_CHECK(m.shared_intermediate_size > 0, origin, ": shared_expert_intermediate_size must be positive");
      m.shared_expert_gate = true;
    }
  } else {  // deepseek_v2, deepseek_v3
    const bool v3 = mt == "deepseek_v3";
    m.num_experts = field<int64_t>(j, origin, "n_routed_experts", int64_t{0});  // null: a dense model
    m.num_experts_per_tok = field<int64_t>(j, origin, "num_experts_per_tok", int64_t{v3 ? 8 : 0});
    if (m.num_experts > 0) m.moe_intermediate_size = field<int64_t>(j, origin, "moe_intermediate_size");
    m.scoring_func = field<std::string>(j, origin, "scoring_func", std::string(v3 ? "sigmoid" : "softmax"));
    m.topk_method = field<std::string>(j, origin, "topk_method", std::string(v3 ? "noaux_tc" : "greedy"));
    // DeepSeek's own gates implement exactly these combinations.
    if (v3) {
      DIST_CHECK(m.scoring_func == "sigmoid", origin, ": scoring_func '", m.scoring_func,
                 "' is not supported for deepseek_v3 (supported: sigmoid)");
      DIST_CHECK(m.topk_method == "noaux_tc", origin, ": topk_method '", m.topk_method,
                 "' is not supported for deepseek_v3 (supported: noaux_tc)");
    } else {
      DIST_CHECK(m.scoring_func == "softmax", origin, ": scoring_func '", m.scoring_func,
                 "' is not supported for deepseek_v2 (supported: softmax)");
      DIST_CHECK(m.topk_method == "greedy" || m.topk_method == "group_limited_greedy", origin, ": topk_method '",
                 m.topk_method, "' is not supported for deepseek_v2 (supported: greedy, group_limited_greedy)");
    }
    m.score_correction_bias = m.topk_method == "noaux_tc";
    if (m.topk_method != "greedy") {
      m.n_group = field<int64_t>(j, origin, "n_group", int64_t{1});
      m.topk_group = field<int64_t>(j, origin, "topk_group", int64_t{1});
    }
    m.norm_topk_prob = field<bool>(j, origin, "norm_topk_prob", v3);
    m.scale_only_unnormalized = !v3;
    m.routed_scaling_factor = field<double>(j, origin, "routed_scaling_factor", v3 ? 2.5 : 1.0);
    const int64_t shared = field<int64_t>(j, origin, "n_shared_experts", int64_t{0});
    DIST_CHECK(shared >= 0, origin, ": n_shared_experts must be >= 0");
    m.shared_intermediate_size = shared * m.moe_intermediate_size;
    m.shared_name = "shared_experts";
  }
  if (!m.enabled()) return;
  DIST_CHECK(m.num_experts > 0 && m.moe_intermediate_size > 0, origin, ": expert counts and sizes must be positive");
  DIST_CHECK(m.num_experts_per_tok >= 1 && m.num_experts_per_tok <= m.num_experts, origin,
             ": num_experts_per_tok=", m.num_experts_per_tok, " must be in [1, ", m.num_experts, "]");
  DIST_CHECK(m.n_group >= 1 && m.num_experts % m.n_group == 0, origin, ": n_group=", m.n_group,
             " does not divide the ", m.num_experts, " routed experts");
  DIST_CHECK(m.topk_group >= 1 && m.topk_group <= m.n_group, origin, ": topk_group=", m.topk_group,
             " must be in [1, n_group=", m.n_group, "]");
  const int64_t per_group = m.num_experts / m.n_group;
  DIST_CHECK(m.num_experts_per_tok <= m.topk_group * per_group, origin, ": num_experts_per_tok=",
             m.num_experts_per_tok, " exceeds the ", m.topk_group * per_group, " experts of topk_group=", m.topk_group,
             " groups");
  if (m.topk_method == "noaux_tc")
    DIST_CHECK(per_group >= 2, origin, ": noaux_tc scores a group by its top-2 experts; n_group=", m.n_group,
               " leaves ", per_group, " per group");
  DIST_CHECK(m.routed_scaling_factor > 0, origin, ": routed_scaling_factor must be positive");
}

void parse_mla(const nlohmann::json& j, const std::string& origin, TransformerConfig& c) {
  auto& a = c.mla;
  a.enabled = true;
  a.q_lora_rank = field<int64_t>(j, origin, "q_lora_rank", int64_t{0});
  a.kv_lora_rank = field<int64_t>(j, origin, "kv_lora_rank");
  a.qk_nope_head_dim = field<int64_t>(j, origin, "qk_nope_head_dim");
  a.qk_rope_head_dim = field<int64_t>(j, origin, "qk_rope_head_dim");
  a.v_head_dim = field<int64_t>(j, origin, "v_head_dim");
  a.rope_interleave = field<bool>(j, origin, "rope_interleave", true);
  DIST_CHECK(a.q_lora_rank >= 0 && a.kv_lora_rank > 0 && a.qk_nope_head_dim >= 0 && a.qk_rope_head_dim > 0 &&
                 a.v_head_dim > 0,
             origin, ": MLA sizes (q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim) must be "
             "positive");
  DIST_CHECK(a.qk_rope_head_dim % 2 == 0, origin, ": qk_rope_head_dim=", a.qk_rope_head_dim,
             " must be even for rotary embeddings");
  c.head_dim = a.qk_rope_head_dim;  // the rotary tables cover the rope part only, as in Hugging Face
  c.attention_bias = field<bool>(j, origin, "attention_bias", false);
  a.softmax_scale = 1.0 / std::sqrt(static_cast<double>(a.qk_nope_head_dim + a.qk_rope_head_dim));
  // DeepSeek: with yarn the logits are sharpened by mscale(factor, mscale_all_dim)^2.
  if (has(j, "rope_scaling") && c.rope_scaling.mscale_all_dim != 0) {
    const double m = yarn_mscale(c.rope_scaling.factor, c.rope_scaling.mscale_all_dim);
    a.softmax_scale *= m * m;
  }
}

const char* kSupported = "llama, qwen2, qwen3, mistral, mixtral, qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3";

}  // namespace model_json

int64_t MoeConfig::num_sparse_layers() const {
  return std::count(sparse_layer.begin(), sparse_layer.end(), true);
}

TransformerConfig TransformerConfig::from_json(const nlohmann::json& j, const std::string& origin) {
  using namespace model_json;
  DIST_CHECK(j.is_object(), origin, ": expected a JSON object");
  TransformerConfig c;
  c.raw = j;
  c.model_type = field<std::string>(j, origin, "model_type");
  const std::string& mt = c.model_type;
  const bool deepseek = mt == "deepseek_v2" || mt == "deepseek_v3";
  DIST_CHECK(mt == "llama" || mt == "qwen2" || mt == "qwen3" || mt == "mistral" || mt == "mixtral" ||
                 mt == "qwen2_moe" || mt == "qwen3_moe" || deepseek,
             origin, ": model_type '", mt, "' is not supported (supported: ", kSupported, ")");
  DIST_CHECK(!has(j, "quantization_config"), origin,
             ": quantization_config is not supported (dequantize the checkpoint to bf16 first)");
  c.vocab_size = field<int64_t>(j, origin, "vocab_size");
  c.hidden_size = field<int64_t>(j, origin, "hidden_size");
  c.intermediate_size = field<int64_t>(j, origin, "intermediate_size");
  c.num_hidden_layers = field<int64_t>(j, origin, "num_hidden_layers");
  c.num_attention_heads = field<int64_t>(j, origin, "num_attention_heads");
  c.num_key_value_heads = field<int64_t>(j, origin, "num_key_value_heads", c.num_attention_heads);
  DIST_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0 &&
                 c.num_attention_heads > 0 && c.num_key_value_heads > 0,
             origin, ": sizes must be positive");
  c.max_position_embeddings = field<int64_t>(j, origin, "max_position_embeddings", 4096);
  c.rms_norm_eps = field<double>(j, origin, "rms_norm_eps", 1e-6);
  c.rope_theta = field<double>(j, origin, "rope_theta", 10000.0);
  c.initializer_range = field<double>(j, origin, "initializer_range", 0.02);
  c.tie_word_embeddings = field<bool>(j, origin, "tie_word_embeddings", false);

  const std::string act = field<std::string>(j, origin, "hidden_act", std::string("silu"));
  DIST_CHECK(act == "silu", origin, ": hidden_act '", act, "' is not supported (supported: silu)");
  const double attn_dropout = field<double>(j, origin, "attention_dropout", 0.0);
  DIST_CHECK(attn_dropout == 0.0, origin, ": attention_dropout=", attn_dropout, " is not supported (use 0.0)");
  parse_rope_scaling(j, origin, c);

  if (deepseek) {
    parse_mla(j, origin, c);  // MLA has no per-head q/k/v width of its own: head_dim is the rope part
    c.num_nextn_predict_layers = field<int64_t>(j, origin, "num_nextn_predict_layers", int64_t{0});
  } else {
    c.head_dim = field<int64_t>(j, origin, "head_dim", c.hidden_size / c.num_attention_heads);
    if (!has(j, "head_dim"))
      DIST_CHECK(c.hidden_size % c.num_attention_heads == 0, origin, ": hidden_size=", c.hidden_size,
                 " is not divisible by num_attention_heads=", c.num_attention_heads);
    DIST_CHECK(c.head_dim % 2 == 0, origin, ": head_dim=", c.head_dim, " must be even for rotary embeddings");
    DIST_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, origin,
               ": num_attention_heads=", c.num_attention_heads,
               " is not a multiple of num_key_value_heads=", c.num_key_value_heads);
  }

  const bool attention_bias = field<bool>(j, origin, "attention_bias", false);
  if (mt == "qwen2") {
    c.qkv_bias = true;  // Qwen2 always has q/k/v biases and never an o_proj bias
  } else if (mt == "qwen2_moe") {
    c.qkv_bias = field<bool>(j, origin, "qkv_bias", true);
  } else if (mt == "llama" || mt == "qwen3" || mt == "qwen3_moe") {
    c.qkv_bias = c.o_bias = attention_bias;
  }
  if (mt == "llama") c.mlp_bias = field<bool>(j, origin, "mlp_bias", false);
  c.qk_norm = mt == "qwen3" || mt == "qwen3_moe";

  if (mt == "mistral" || mt == "mixtral") {
    if (has(j, "sliding_window")) c.sliding_window = field<int64_t>(j, origin, "sliding_window");
  } else if (mt == "qwen2" || mt == "qwen3" || mt == "qwen2_moe" || mt == "qwen3_moe") {
    if (field<bool>(j, origin, "use_sliding_window", false)) {
      const int64_t max_window_layers = field<int64_t>(j, origin, "max_window_layers", c.num_hidden_layers);
      DIST_CHECK(max_window_layers >= c.num_hidden_layers, origin,
                 ": use_sliding_window with max_window_layers < num_hidden_layers is not supported");
      c.sliding_window = field<int64_t>(j, origin, "sliding_window");
    }
  }
  if (c.sliding_window) DIST_CHECK(*c.sliding_window > 0, origin, ": sliding_window must be positive");

  if (mt == "mixtral" || mt == "qwen2_moe" || mt == "qwen3_moe" || deepseek) parse_moe(j, origin, c);
  parse_sparse_layers(j, origin, c);
  return c;
}

TransformerConfig TransformerConfig::load(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  DIST_CHECK(std::filesystem::exists(path), path, ": not found (model.path must be a Hugging Face model directory)");
  return from_json(read_json_file(path), path);
}

}  // namespace distillery
