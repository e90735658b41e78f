#include "models/model_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/error.h"
#include "common/fs_util.h"
#include "models/model_defaults.h"

namespace distillery {
namespace model_json {

// config.json read as transformers reads it: a key present in the file wins; a missing key takes
// the default of transformers' config class for the model_type (models/model_defaults.h).
class Reader {
 public:
  Reader(const nlohmann::json& j, std::string origin, const nlohmann::json* defaults)
      : j_(j), origin_(std::move(origin)), defaults_(defaults) {}
  const std::string& origin() const { return origin_; }
  const nlohmann::json& json() const { return j_; }

  // The key's value from the file, else the family default; nullptr when neither has it. A key
  // present as null in the file is null (transformers' None), not the default.
  const nlohmann::json* value(const char* key) const {
    if (j_.contains(key)) return &j_[key];
    if (defaults_ && defaults_->contains(key)) return &(*defaults_)[key];
    return nullptr;
  }
  bool in_file(const char* key) const { return j_.contains(key); }

  // A value that must exist: the file's, else the family default (also for an explicit null).
  template <class T>
  T get(const char* key) const {
    const nlohmann::json* v = j_.contains(key) && !j_[key].is_null() ? &j_[key] : nullptr;
    if (!v && defaults_ && defaults_->contains(key) && !(*defaults_)[key].is_null()) v = &(*defaults_)[key];
    DIST_CHECK(v, origin_, ": missing required field '", key, "'");
    return convert<T>(*v, key);
  }

  // A value transformers allows to be None: nullopt for null (in the file, or as the default).
  template <class T>
  std::optional<T> opt(const char* key) const {
    const nlohmann::json* v = value(key);
    if (!v || v->is_null()) return std::nullopt;
    return convert<T>(*v, key);
  }

 private:
  template <class T>
  T convert(const nlohmann::json& v, const char* key) const {
    try {
      return v.get<T>();
    } catch (const nlohmann::json::exception&) {
      DIST_FAIL(origin_, ": field '", key, "' has the wrong type (", v.dump(), ")");
    }
  }
  const nlohmann::json& j_;
  std::string origin_;
  const nlohmann::json* defaults_;
};

// For nested objects (rope_scaling): fallback when missing or null.
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
void parse_sparse_layers(const Reader& r, TransformerConfig& c) {
  const std::string& origin = r.origin();
  auto& m = c.moe;
  m.sparse_layer.assign(c.num_hidden_layers, m.enabled());
  if (!m.enabled()) return;
  const std::string& mt = c.model_type;
  if (mt == "qwen2_moe" || mt == "qwen3_moe") {
    const int64_t step = r.get<int64_t>("decoder_sparse_step");
    DIST_CHECK(step >= 1, origin, ": decoder_sparse_step must be >= 1 (got ", step, ")");
    const auto only = r.opt<std::vector<int64_t>>("mlp_only_layers").value_or(std::vector<int64_t>{});
    for (int64_t i = 0; i < c.num_hidden_layers; ++i)
      m.sparse_layer[i] = (i + 1) % step == 0 && std::find(only.begin(), only.end(), i) == only.end();
  } else if (mt == "deepseek_v2" || mt == "deepseek_v3") {
    const int64_t first_dense = r.get<int64_t>("first_k_dense_replace");
    const int64_t freq = r.get<int64_t>("moe_layer_freq");
    DIST_CHECK(freq >= 1, origin, ": moe_layer_freq must be >= 1 (got ", freq, ")");
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) m.sparse_layer[i] = i >= first_dense && i % freq == 0;
  }
}

void parse_moe(const Reader& r, TransformerConfig& c) {
  const std::string& origin = r.origin();
  const std::string& mt = c.model_type;
  auto& m = c.moe;
  if (mt == "mixtral") {
    m.num_experts = r.get<int64_t>("num_local_experts");
    m.num_experts_per_tok = r.get<int64_t>("num_experts_per_tok");
    m.moe_intermediate_size = c.intermediate_size;
    m.norm_topk_prob = true;  // Mixtral: softmax over the selected logits
    m.router_jitter_noise = r.get<double>("router_jitter_noise");
    DIST_CHECK(m.router_jitter_noise >= 0 && m.router_jitter_noise < 1, origin, ": router_jitter_noise=",
               m.router_jitter_noise, " must be in [0, 1)");
    m.router_aux_loss_coef = r.get<double>("router_aux_loss_coef");
    m.block_name = "block_sparse_moe";
    m.w123_names = true;
  } else if (mt == "qwen2_moe" || mt == "qwen3_moe") {
    m.num_experts = r.get<int64_t>("num_experts");
    m.num_experts_per_tok = r.get<int64_t>("num_experts_per_tok");
    m.moe_intermediate_size = r.get<int64_t>("moe_intermediate_size");
    m.norm_topk_prob = r.get<bool>("norm_topk_prob");
    m.router_aux_loss_coef = r.get<double>("router_aux_loss_coef");
    if (mt == "qwen2_moe") {
      m.shared_intermediate_size = r.get<int64_t>("shared_expert_intermediate_size");
      DIST_CHECK(m.shared_intermediate_size > 0, origin, ": shared_expert_intermediate_size must be positive");
      m.shared_expert_gate = true;
    }
  } else {  // deepseek_v2, deepseek_v3
    const bool v3 = mt == "deepseek_v3";
    m.num_experts = r.opt<int64_t>("n_routed_experts").value_or(0);  // null: a dense model
    if (m.num_experts > 0) {
      // deepseek_v2's class defaults num_experts_per_tok to None: a sparse model must name it.
      m.num_experts_per_tok = r.get<int64_t>("num_experts_per_tok");
      m.moe_intermediate_size = r.get<int64_t>("moe_intermediate_size");
    }
    m.scoring_func = r.get<std::string>("scoring_func");
    m.topk_method = r.get<std::string>("topk_method");
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
    if (m.topk_method != "greedy") {  // greedy ignores the groups
      m.n_group = r.get<int64_t>("n_group");
      m.topk_group = r.get<int64_t>("topk_group");
    }
    m.norm_topk_prob = r.get<bool>("norm_topk_prob");
    m.scale_only_unnormalized = !v3;
    m.routed_scaling_factor = r.get<double>("routed_scaling_factor");
    const int64_t shared = r.opt<int64_t>("n_shared_experts").value_or(0);
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

void parse_mla(const Reader& r, TransformerConfig& c) {
  const std::string& origin = r.origin();
  auto& a = c.mla;
  a.enabled = true;
  a.q_lora_rank = r.opt<int64_t>("q_lora_rank").value_or(0);  // null: a plain q_proj
  a.kv_lora_rank = r.get<int64_t>("kv_lora_rank");
  a.qk_nope_head_dim = r.get<int64_t>("qk_nope_head_dim");
  a.qk_rope_head_dim = r.get<int64_t>("qk_rope_head_dim");
  a.v_head_dim = r.get<int64_t>("v_head_dim");
  a.rope_interleave = r.get<bool>("rope_interleave");
  DIST_CHECK(a.q_lora_rank >= 0 && a.kv_lora_rank > 0 && a.qk_nope_head_dim >= 0 && a.qk_rope_head_dim > 0 &&
                 a.v_head_dim > 0,
             origin, ": MLA sizes (q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim) must be "
             "positive");
  DIST_CHECK(a.qk_rope_head_dim % 2 == 0, origin, ": qk_rope_head_dim=", a.qk_rope_head_dim,
             " must be even for rotary embeddings");
  c.head_dim = a.qk_rope_head_dim;  // the rotary tables cover the rope part only, as in Hugging Face
  c.attention_bias = r.get<bool>("attention_bias");
  a.softmax_scale = 1.0 / std::sqrt(static_cast<double>(a.qk_nope_head_dim + a.qk_rope_head_dim));
  // DeepSeek: with yarn the logits are sharpened by mscale(factor, mscale_all_dim)^2.
  if (has(r.json(), "rope_scaling") && c.rope_scaling.mscale_all_dim != 0) {
    const double m = yarn_mscale(c.rope_scaling.factor, c.rope_scaling.mscale_all_dim);
    a.softmax_scale *= m * m;
  }
}

// transformers' layer_types, when the file has it: per layer, whether it is sliding_attention.
std::optional<std::vector<bool>> parse_layer_types(const Reader& r, int64_t layers) {
  const auto types = r.opt<std::vector<std::string>>("layer_types");
  if (!types) return std::nullopt;
  DIST_CHECK(static_cast<int64_t>(types->size()) == layers, r.origin(), ": layer_types has ", types->size(),
             " entries but num_hidden_layers=", layers);
  std::vector<bool> sliding(layers);
  for (int64_t i = 0; i < layers; ++i) {
    const std::string& t = (*types)[i];
    DIST_CHECK(t == "full_attention" || t == "sliding_attention", r.origin(), ": layer_types[", i, "]='", t,
               "' is not supported (supported: full_attention, sliding_attention)");
    sliding[i] = t == "sliding_attention";
  }
  return sliding;
}

// Which layers attend through a sliding window, as transformers decides it per family:
//   mistral, mixtral: every layer uses sliding_window (null: none).
//   qwen2, qwen3: with use_sliding_window, layers i >= max_window_layers use sliding_window; a
//     layer_types list, when present, names each layer's kind instead.
//   qwen2_moe, qwen3_moe: refused (transformers versions disagree on which layers slide).
void parse_attention_windows(const Reader& r, TransformerConfig& c) {
  const std::string& origin = r.origin();
  const std::string& mt = c.model_type;
  const int64_t L = c.num_hidden_layers;
  c.layer_window.assign(L, std::nullopt);
  const auto types = parse_layer_types(r, L);
  const bool any_sliding_type = types && std::find(types->begin(), types->end(), true) != types->end();
  if (mt == "qwen2" || mt == "qwen3") {
    const bool use = r.get<bool>("use_sliding_window");
    const std::optional<int64_t> window = use ? r.opt<int64_t>("sliding_window") : std::nullopt;
    if (types) {
      for (int64_t i = 0; i < L; ++i) {
        if (!(*types)[i]) continue;
        DIST_CHECK(window, origin, ": layer_types[", i, "]='sliding_attention' needs a sliding_window, but ",
                   use ? "sliding_window is null" : "use_sliding_window is false");
        c.layer_window[i] = window;
      }
    } else if (window) {
      const int64_t full_layers = r.get<int64_t>("max_window_layers");
      for (int64_t i = std::max<int64_t>(full_layers, 0); i < L; ++i) c.layer_window[i] = window;
    }
  } else {
    DIST_CHECK(!any_sliding_type, origin, ": layer_types with 'sliding_attention' is not supported for model_type ",
               mt, " (", mt, " in transformers does not read layer_types)");
    if (mt == "qwen2_moe" || mt == "qwen3_moe") {
      const bool use = r.get<bool>("use_sliding_window");
      DIST_CHECK(!use, origin, ": use_sliding_window=true is not supported for model_type ", mt,
                 " (transformers versions disagree on which layers slide)");
    } else if (mt == "mistral" || mt == "mixtral") {
      c.layer_window.assign(L, r.opt<int64_t>("sliding_window"));
    }
  }
  for (const auto& w : c.layer_window)
    if (w) DIST_CHECK(*w > 0, origin, ": sliding_window=", *w, " must be positive");
}

// Keys that change the math and that this implementation does not have: refused by name and
// value, never ignored. (Keys it does honour are parsed above and in from_json.)
void refuse_unimplemented(const Reader& r, const TransformerConfig& c) {
  const std::string& origin = r.origin();
  const std::string& mt = c.model_type;
  const auto act = r.get<std::string>("hidden_act");
  DIST_CHECK(act == "silu" || act == "swish", origin, ": hidden_act '", act,
             "' is not supported (supported: silu, swish)");
  const double attn_dropout = r.get<double>("attention_dropout");
  DIST_CHECK(attn_dropout == 0.0, origin, ": attention_dropout=", attn_dropout,
             " is not supported (transformers applies it while training; use 0.0)");
  if (const auto f = r.opt<double>("partial_rotary_factor"))
    DIST_CHECK(*f == 1.0, origin, ": partial_rotary_factor=", *f,
               " is not supported (rotary embeddings cover the whole head: 1.0)");
  for (const char* key : {"attn_logit_softcapping", "final_logit_softcapping"})
    if (const nlohmann::json* v = r.value(key))
      DIST_CHECK(v->is_null(), origin, ": ", key, "=", v->dump(), " is not supported (logit soft-capping; use null)");
  if (const auto mrope = r.opt<bool>("use_mrope"))
    DIST_CHECK(!*mrope, origin, ": use_mrope=true is not supported (multimodal rotary embeddings)");
  if (r.value("rope_scaling") && r.value("rope_scaling")->is_object() && r.value("rope_scaling")->contains("mrope_section"))
    DIST_FAIL(origin, ": rope_scaling.mrope_section is not supported (multimodal rotary embeddings)");
  // Biases the family's transformers modules do not have (llama: attention_bias and mlp_bias,
  // qwen3 / qwen3_moe / DeepSeek: attention_bias, qwen2_moe: qkv_bias are honoured).
  const bool attention_bias_honoured = mt == "llama" || mt == "qwen3" || mt == "qwen3_moe" ||
                                       mt == "deepseek_v2" || mt == "deepseek_v3";
  if (!attention_bias_honoured)
    if (const auto b = r.opt<bool>("attention_bias"))
      DIST_CHECK(!*b, origin, ": attention_bias=true is not supported for model_type ", mt,
                 mt == "qwen2" || mt == "qwen2_moe" ? " (its q/k/v projections always have biases, o_proj never)"
                                                    : " (its attention projections have no biases)");
  if (mt != "llama")
    if (const auto b = r.opt<bool>("mlp_bias"))
      DIST_CHECK(!*b, origin, ": mlp_bias=true is not supported for model_type ", mt, " (its MLPs have no biases)");
}

}  // namespace model_json

int64_t MoeConfig::num_sparse_layers() const {
  return std::count(sparse_layer.begin(), sparse_layer.end(), true);
}

bool TransformerConfig::has_sliding_window() const {
  return std::any_of(layer_window.begin(), layer_window.end(), [](const auto& w) { return w.has_value(); });
}

TransformerConfig TransformerConfig::from_json(const nlohmann::json& j, const std::string& origin) {
  using namespace model_json;
  DIST_CHECK(j.is_object(), origin, ": expected a JSON object");
  TransformerConfig c;
  c.raw = j;
  c.model_type = field<std::string>(j, origin, "model_type");
  const std::string& mt = c.model_type;
  const nlohmann::json* defaults = family_defaults(mt);
  if (!defaults) {
    std::string names;
    for (const auto& n : supported_model_types()) names += (names.empty() ? "" : ", ") + n;
    DIST_FAIL(origin, ": model_type '", mt, "' is not supported (supported: ", names, ")");
  }
  const Reader r(j, origin, defaults);
  const bool deepseek = mt == "deepseek_v2" || mt == "deepseek_v3";
  DIST_CHECK(!has(j, "quantization_config"), origin,
             ": quantization_config is not supported (dequantize the checkpoint to bf16 first)");
  c.vocab_size = r.get<int64_t>("vocab_size");
  c.hidden_size = r.get<int64_t>("hidden_size");
  c.intermediate_size = r.get<int64_t>("intermediate_size");
  c.num_hidden_layers = r.get<int64_t>("num_hidden_layers");
  c.num_attention_heads = r.get<int64_t>("num_attention_heads");
  c.num_key_value_heads = r.opt<int64_t>("num_key_value_heads").value_or(c.num_attention_heads);
  DIST_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_hidden_layers > 0 &&
                 c.num_attention_heads > 0 && c.num_key_value_heads > 0,
             origin, ": sizes must be positive");
  c.max_position_embeddings = r.get<int64_t>("max_position_embeddings");
  c.rms_norm_eps = r.get<double>("rms_norm_eps");
  c.rope_theta = r.get<double>("rope_theta");
  c.initializer_range = r.get<double>("initializer_range");
  c.tie_word_embeddings = r.get<bool>("tie_word_embeddings");
  refuse_unimplemented(r, c);
  parse_rope_scaling(j, origin, c);

  if (deepseek) {
    parse_mla(r, c);  // MLA has no per-head q/k/v width of its own: head_dim is the rope part
    c.num_nextn_predict_layers = r.get<int64_t>("num_nextn_predict_layers");
  } else {
    const auto head_dim = r.opt<int64_t>("head_dim");
    if (!head_dim)
      DIST_CHECK(c.hidden_size % c.num_attention_heads == 0, origin, ": hidden_size=", c.hidden_size,
                 " is not divisible by num_attention_heads=", c.num_attention_heads);
    c.head_dim = head_dim.value_or(c.hidden_size / c.num_attention_heads);
    DIST_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, origin, ": head_dim=", c.head_dim,
               " must be even and positive for rotary embeddings");
    DIST_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, origin,
               ": num_attention_heads=", c.num_attention_heads,
               " is not a multiple of num_key_value_heads=", c.num_key_value_heads);
  }

  if (mt == "qwen2") {
    c.qkv_bias = true;  // Qwen2 always has q/k/v biases and never an o_proj bias
  } else if (mt == "qwen2_moe") {
    c.qkv_bias = r.get<bool>("qkv_bias");
  } else if (mt == "llama" || mt == "qwen3" || mt == "qwen3_moe") {
    c.qkv_bias = c.o_bias = r.get<bool>("attention_bias");
  }
  if (mt == "llama") c.mlp_bias = r.get<bool>("mlp_bias");
  c.qk_norm = mt == "qwen3" || mt == "qwen3_moe";

  parse_attention_windows(r, c);
  if (mt == "mixtral" || mt == "qwen2_moe" || mt == "qwen3_moe" || deepseek) parse_moe(r, c);
  parse_sparse_layers(r, c);
  return c;
}

TransformerConfig TransformerConfig::load(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  DIST_CHECK(std::filesystem::exists(path), path, ": not found (model.path must be a Hugging Face model directory)");
  return from_json(read_json_file(path), path);
}

}  // namespace distillery
