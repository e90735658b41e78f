#include "models/hf_model.h"

#include <filesystem>
#include <set>

#include "parallel/model_shards.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "common/safetensors.h"

namespace distillery {
namespace fs = std::filesystem;

const std::vector<std::string>& hf_side_files() {
  static const std::vector<std::string> files = {
      "generation_config.json", "tokenizer.json",      "tokenizer_config.json", "special_tokens_map.json",
      "vocab.json",             "merges.txt",          "tokenizer.model",       "chat_template.jinja",
      "added_tokens.json"};
  return files;
}

torch::Dtype parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  if (name == "fp16" || name == "float16") return torch::kFloat16;
  DIST_FAIL("unknown dtype '", name, "' (expected fp32, bf16 or fp16)");
}

std::string hf_dtype_name(torch::Dtype dtype) {
  if (dtype == torch::kBFloat16) return "bfloat16";
  if (dtype == torch::kFloat16) return "float16";
  return "float32";
}

namespace hf_model_detail {

// deepseek_v3 checkpoints carry num_nextn_predict_layers multi-token-prediction layers after the
// last decoder layer (model.layers.61.* for V3); Hugging Face does not load them, nor do we.
bool is_mtp_tensor(const TransformerConfig& c, const std::string& name) {
  const std::string prefix = "model.layers.";
  if (c.num_nextn_predict_layers <= 0 || name.rfind(prefix, 0) != 0) return false;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos) return false;
  try {
    const int64_t layer = std::stoll(name.substr(prefix.size(), dot - prefix.size()));
    return layer >= c.num_hidden_layers && layer < c.num_hidden_layers + c.num_nextn_predict_layers;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace hf_model_detail

std::vector<std::pair<std::string, torch::Tensor>> hf_named_tensors(CausalLM& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& np : model->named_parameters()) out.emplace_back(np.key(), np.value());
  for (auto& nb : model->named_buffers()) out.emplace_back(nb.key(), nb.value());
  return out;
}

void check_parallel_layout(const TransformerConfig& c, int tp, int ep, const std::string& where) {
  std::vector<std::string> problems;
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) problems.push_back(what);
  };
  const std::string t = "parallel.tp=" + std::to_string(tp), e = "parallel.ep=" + std::to_string(ep);
  if (tp > 1) {
    need(c.num_attention_heads % tp == 0,
         t + " does not divide num_attention_heads " + std::to_string(c.num_attention_heads));
    if (!c.mla.enabled)
      need(c.num_key_value_heads % tp == 0 || tp % c.num_key_value_heads == 0,
           t + " and num_key_value_heads " + std::to_string(c.num_key_value_heads) +
               ": one must divide the other (key/value heads are split, or replicated when tp is larger)");
    need(c.vocab_size % tp == 0, t + " does not divide vocab_size " + std::to_string(c.vocab_size));
    need(c.intermediate_size % tp == 0 || (c.moe.enabled() && c.moe.num_sparse_layers() == c.num_hidden_layers),
         t + " does not divide intermediate_size " + std::to_string(c.intermediate_size));
    if (c.moe.enabled()) {
      need(c.moe.moe_intermediate_size % tp == 0,
           t + " does not divide moe_intermediate_size " + std::to_string(c.moe.moe_intermediate_size));
      need(c.moe.shared_intermediate_size % tp == 0,
           t + " does not divide the shared expert width " + std::to_string(c.moe.shared_intermediate_size));
    }
  }
  if (ep > 1) {
    need(c.moe.enabled(), e + " needs a mixture-of-experts model; model_type " + c.model_type + " has no experts");
    if (c.moe.enabled())
      need(c.moe.num_experts % ep == 0, e + " does not divide the " + std::to_string(c.moe.num_experts) + " routed experts");
  }
  if (problems.empty()) return;
  std::string joined;
  for (const auto& p : problems) joined += (joined.empty() ? "" : "; ") + p;
  DIST_FAIL(where, ": cannot split this model: ", joined);
}

void load_hf_weights(CausalLM& model, const std::string& dir) {
  auto set = SafetensorsSet::open_dir(dir);
  torch::NoGradGuard no_grad;
  const auto shards = parallel::tp_shard_map(*model);
  std::set<std::string> used;
  std::map<std::string, std::string> expert_example;  // expert block -> one local tensor name of it
  for (auto& np : hf_named_tensors(model)) {
    const std::string& name = np.first;
    auto& p = np.second;
    DIST_CHECK(set.contains(name), set.describe(), ": missing tensor '", name, "' (model_type ",
               model->config().model_type, ")");
    const auto& e = set.entry(name);
    const parallel::TpShard s = parallel::shard_of(shards, name);
    const auto expected = parallel::full_shape(p, s);
    DIST_CHECK(e.shape == expected, set.describe(), ": tensor '", name, "' has shape ", c10::IntArrayRef(e.shape),
               ", expected ", c10::IntArrayRef(expected), " from config.json");
    check_loadable_dtype(e.dtype, p.scalar_type(), set.file_of(name), name);
    p.copy_(parallel::local_slice(set.view(name), s).to(p.scalar_type()));
    check_finite(p, set.file_of(name), name);
    used.insert(name);
  }
  for (const auto& name : set.names()) {
    if (used.count(name)) continue;
    // Experts held by other ep ranks: the same tensor of an expert this rank holds is expected.
    const auto en = parallel::parse_expert_name(name);
    if (en.expert >= 0 && model->parallel().ep_size() > 1 && en.expert < model->config().moe.num_experts) {
      const int64_t first = model->parallel().ep_rank() * model->experts_per_rank();
      if (used.count(en.with_expert(name, first))) continue;
    }
    // Tied checkpoints sometimes still carry lm_head; old ones carry rotary tables. Both are derived.
    if (name == "lm_head.weight" && model->config().tie_word_embeddings) continue;
    if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    if (hf_model_detail::is_mtp_tensor(model->config(), name)) continue;
    DIST_FAIL(set.describe(), ": unexpected tensor '", name, "' for model_type ", model->config().model_type);
  }
}

CausalLM load_hf_model(const std::string& dir, torch::Dtype dtype, const parallel::ModelParallel& mp) {
  auto cfg = TransformerConfig::load(dir);
  check_parallel_layout(cfg, mp.tp_size(), mp.ep_size(), (fs::path(dir) / "config.json").string());
  CausalLM model(std::move(cfg), mp);
  load_hf_weights(model, dir);
  model->to(dtype);
  return model;
}

namespace hf_model_detail {

// This rank's tensors (detached) and how to place each in its whole tensor.
struct LocalState {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  parallel::ShardMap shards;
  parallel::ShardOf shard_of() const {
    return [this](const std::string& n) { return parallel::shard_of(shards, n); };
  }
};

LocalState local_state(CausalLM& model) {
  LocalState s;
  for (auto& np : hf_named_tensors(model)) s.tensors.emplace_back(np.first, np.second.detach());
  s.shards = parallel::tp_shard_map(*model);
  return s;
}

}  // namespace hf_model_detail

std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(CausalLM& model, torch::Dtype dtype, bool keep) {
  auto s = hf_model_detail::local_state(model);
  auto out = parallel::gather_full(s.tensors, s.shard_of(), model->parallel(), model->experts_per_rank(), keep);
  for (auto& nt : out) nt.second = nt.second.to(dtype);
  return out;
}

void write_hf_model_files(CausalLM& model, const std::string& dir, const std::string& source_dir,
                          torch::Dtype dtype, int64_t max_shard_bytes, bool write) {
  if (write) {
    fs::create_directories(dir);
    nlohmann::json cfg = model->config().raw;
    cfg["torch_dtype"] = hf_dtype_name(dtype);
    write_json_file((fs::path(dir) / "config.json").string(), cfg);
    if (!source_dir.empty())
      for (const auto& f : hf_side_files()) {
        const fs::path src = fs::path(source_dir) / f;
        if (fs::exists(src)) copy_file_atomic(src.string(), (fs::path(dir) / f).string());
      }
  }
  // Each whole tensor is assembled in turn (over tp and ep when sharded), cast and written straight
  // to its place in the files, so the writing rank never holds a second copy of the model.
  auto s = hf_model_detail::local_state(model);
  std::unique_ptr<SafetensorsDirWriter> out;
  if (write) {
    auto plan = parallel::full_tensor_plan(s.tensors, s.shard_of(), model->parallel(), model->experts_per_rank());
    for (auto& m : plan) m.dtype = dtype;
    out = std::make_unique<SafetensorsDirWriter>(dir, plan, max_shard_bytes);
  }
  parallel::for_each_full_tensor(s.tensors, s.shard_of(), model->parallel(), model->experts_per_rank(),
                                 [&](const std::string& name, const torch::Tensor& whole) {
                                   if (out) out->write(name, whole.to(dtype));
                                 });
  if (out) out->commit();
}

void save_hf_model(CausalLM& model, const std::string& out_dir, const std::string& source_dir,
                   torch::Dtype dtype, int64_t max_shard_bytes, bool write) {
  const std::string tmp = out_dir + ".tmp";
  if (write) fs::remove_all(tmp);
  write_hf_model_files(model, tmp, source_dir, dtype, max_shard_bytes, write);
  if (write) commit_dir(tmp, out_dir);
}

}  // namespace distillery
