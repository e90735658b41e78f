#include "generation/generate.h"

#include <filesystem>

#include "common/error.h"
#include "common/fs_util.h"

namespace distillery {
namespace fs = std::filesystem;

torch::Tensor sample_next(const torch::Tensor& logits, const SamplingParams& p, at::Generator& gen) {
  if (p.temperature == 0) return logits.argmax(-1);
  auto scores = logits.to(torch::kFloat32) / p.temperature;  // [B, V]
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (p.top_k > 0 && p.top_k < scores.size(-1)) {
    auto kth = std::get<0>(scores.topk(p.top_k, -1)).narrow(-1, p.top_k - 1, 1);  // [B, 1]
    scores = scores.masked_fill(scores < kth, neg_inf);
  }
  if (p.top_p < 1.0) {
    // Keep the smallest set of most likely tokens whose probability reaches top_p (at least one).
    auto [sorted, order] = scores.sort(-1, /*descending=*/true);
    auto cum = sorted.softmax(-1).cumsum(-1);
    auto drop_sorted = (cum - sorted.softmax(-1)) >= p.top_p;  // mass before this token already enough
    auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
    scores = scores.masked_fill(drop, neg_inf);
  }
  auto probs = scores.softmax(-1);
  return torch::multinomial(probs, 1, false, gen).squeeze(-1);
}

namespace generate_detail {

std::vector<int64_t> eos_list(const nlohmann::json& j) {
  if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) return {};
  const auto& e = j["eos_token_id"];
  if (e.is_number_integer()) return {e.get<int64_t>()};
  std::vector<int64_t> out;
  if (e.is_array())
    for (const auto& x : e)
      if (x.is_number_integer()) out.push_back(x.get<int64_t>());
  return out;
}

}  // namespace generate_detail

std::vector<int64_t> model_stop_ids(const std::string& model_dir, std::optional<int64_t> fallback) {
  for (const char* f : {"generation_config.json", "config.json"}) {
    const fs::path path = fs::path(model_dir) / f;
    if (!fs::exists(path)) continue;
    auto ids = generate_detail::eos_list(read_json_file(path.string()));
    if (!ids.empty()) return ids;
  }
  if (fallback) return {*fallback};
  return {};
}

std::vector<Generation> generate_batch(CausalLM& model, const std::vector<std::vector<int32_t>>& prompts,
                                       const SamplingParams& params, const std::vector<int64_t>& stop_ids,
                                       uint64_t seed, parallel::Communicator* lockstep) {
  torch::NoGradGuard no_grad;
  const bool alone = prompts.empty();
  if (alone && !lockstep) return {};
  // A rank without prompts steps a one-token dummy row so its ep peers' exchanges complete.
  const std::vector<std::vector<int32_t>> rows = alone ? std::vector<std::vector<int32_t>>{{0}} : prompts;
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t L = 0;
  for (const auto& r : rows) {
    DIST_CHECK(!r.empty(), "generate: an empty prompt");
    L = std::max<int64_t>(L, static_cast<int64_t>(r.size()));
  }
  const auto device = model->parameters().front().device();
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  auto ids = torch::zeros({B, L}, i64), pos = torch::zeros({B, L}, i64), doc = torch::full({B, L}, -1, i64);
  auto ids_a = ids.accessor<int64_t, 2>(), pos_a = pos.accessor<int64_t, 2>(), doc_a = doc.accessor<int64_t, 2>();
  std::vector<int64_t> length(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(rows[b].size()), pad = L - n;
    length[b] = n;
    for (int64_t i = 0; i < n; ++i) ids_a[b][pad + i] = rows[b][i], pos_a[b][pad + i] = i, doc_a[b][pad + i] = 0;
  }
  const auto lengths = torch::tensor(length, i64).unsqueeze(1);  // [B, 1]: the first new token's position
  auto gen = at::detail::createCPUGenerator(seed);
  auto stops = torch::tensor(stop_ids.empty() ? std::vector<int64_t>{-1} : stop_ids, i64);
  KvCache cache;
  std::vector<Generation> out(B);
  std::vector<bool> done(B, false);
  auto step_in = ForwardInputs{ids.to(device), pos.to(device), doc.to(device), nullptr, &cache};
  for (int64_t t = 0; t < params.max_new_tokens; ++t) {
    auto h = model->forward(step_in);                                  // [B, T, H]
    auto logits = model->logits(h.narrow(1, h.size(1) - 1, 1).squeeze(1)).cpu();  // [B, V]
    auto next = sample_next(logits, params, gen);                      // [B]
    auto is_stop = torch::isin(next, stops);
    const auto* nx = next.data_ptr<int64_t>();
    const auto* st = is_stop.data_ptr<bool>();
    bool any_alive = false;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      out[b].ids.push_back(static_cast<int32_t>(nx[b]));
      if (st[b]) out[b].stopped = done[b] = true;
      any_alive = any_alive || !done[b];
    }
    if (alone) any_alive = false;
    if (lockstep && lockstep->size() > 1) {
      auto flag = torch::tensor({any_alive ? 1.0 : 0.0}, torch::kFloat64);
      lockstep->allreduce(flag, parallel::ReduceOp::kMax);
      any_alive = flag.item<double>() > 0;
    }
    if (!any_alive || t + 1 == params.max_new_tokens) break;
    step_in = ForwardInputs{next.unsqueeze(1).to(device), (lengths + t).to(device), torch::zeros({B, 1}, i64).to(device),
                            nullptr, &cache};
  }
  if (alone) return {};
  return out;
}

}  // namespace distillery
