#include "algorithms/sft/sft.h"

#include <numeric>
#include <sstream>

#include "data/dataset_builder.h"
#include "trainer/error.h"
#include "trainer/losses.h"
#include "trainer/moe_losses.h"

namespace distillery {

Sft::Sft(const RecipeConfig& cfg, int64_t vocab_size, int dp_rank, int dp_size)
    : cfg_(cfg), dp_rank_(dp_rank), dp_size_(dp_size) {
  const TextPipeline text = load_text_pipeline(cfg.data, cfg.model.path);
  train_ = build_examples(cfg.data, cfg.data.train, text, vocab_size);
  stream_ = std::make_unique<RowStream>(train_, cfg.data.max_seq_len, cfg.data.truncation, cfg.data.packing,
                                        cfg.data.shuffle, static_cast<uint64_t>(cfg.trainer.seed));
  if (!cfg.data.eval.empty()) {
    eval_ = build_examples(cfg.data, cfg.data.eval, text, vocab_size);
    std::vector<uint32_t> order(eval_.size());
    std::iota(order.begin(), order.end(), 0u);
    eval_rows_ = pack_rows(eval_, order, cfg.data.max_seq_len, cfg.data.truncation, cfg.data.packing, nullptr);
  }
}

std::string Sft::describe() const {
  std::ostringstream s;
  s << "sft: " << train_.size() << " examples";
  if (train_.without_targets()) s << " (" << train_.without_targets() << " without targets)";
  s << ", " << train_.total_tokens() << " tokens -> "
    << stream_->rows_per_epoch() << " rows of " << cfg_.data.max_seq_len << " per epoch";
  if (stream_->stats().truncated) s << ", " << stream_->stats().truncated << " truncated";
  if (stream_->stats().dropped) s << ", " << stream_->stats().dropped << " dropped (longer than max_seq_len)";
  if (!eval_rows_.empty()) s << "; eval: " << eval_.size() << " examples in " << eval_rows_.size() << " rows";
  return s.str();
}

StepData Sft::next_step() {
  const int64_t mbs = cfg_.trainer.micro_batch_size, accum = cfg_.trainer.grad_accum_steps;
  const int64_t per_rank = mbs * accum;
  // Every rank draws the same global rows, so the normalizer needs no communication and the
  // step is the same whatever the dp size.
  auto rows = stream_->take(per_rank * dp_size_);
  StepData out;
  for (const auto& r : rows) {
    out.global_targets += count_targets(train_, r);
    for (const auto& p : r) out.global_tokens += p.length;
  }
  step_tokens_ = out.global_tokens;
  step_counts_ = torch::Tensor();
  for (int64_t m = 0; m < accum; ++m) {
    auto first = rows.begin() + dp_rank_ * per_rank + m * mbs;
    out.micro.push_back(make_micro_batch(train_, std::vector<PackedRow>(first, first + mbs), cfg_.data.max_seq_len));
  }
  return out;
}

torch::Tensor sft_loss_sum(CausalLM& model, const MicroBatch& mb, int64_t chunk_tokens, RouterStats* router) {
  auto hidden = model->forward({mb.input_ids, mb.position_ids, mb.doc_ids, router});  // [B, T, H]
  auto [h, t] = select_targets(hidden, mb.targets);                                     // [N, H], [N]
  return model->cross_entropy_sum(h, t, chunk_tokens);
}

torch::Tensor Sft::loss(CausalLM& model, const MicroBatch& mb, int64_t global_targets,
                        std::map<std::string, double>& metrics) {
  const auto& mc = model->config();
  RouterStats router;
  const bool moe = mc.moe.enabled() && mc.moe.num_sparse_layers() > 0;
  auto loss = sft_loss_sum(model, mb, cfg_.model.loss_chunk_tokens, moe ? &router : nullptr) /
              static_cast<double>(std::max<int64_t>(1, global_targets));
  if (!moe) return loss;
  // Router losses are per-token means over the whole step (see trainer/moe_losses.h), added to the
  // per-target cross-entropy mean.
  auto terms = moe_loss_terms(router, mc.moe.num_experts, step_tokens_);
  const double aux_coef = cfg_.moe.aux_coef_for(mc), z_coef = cfg_.moe.z_loss_coef;
  if (aux_coef > 0) loss = loss + aux_coef * terms.aux;
  if (z_coef > 0) loss = loss + z_coef * terms.z;
  const double share = static_cast<double>(terms.tokens) / static_cast<double>(std::max<int64_t>(1, step_tokens_));
  step_counts_ = step_counts_.defined() ? step_counts_ + terms.layer_counts.cpu() : terms.layer_counts.cpu();
  metrics["moe_aux_loss"] += terms.aux.item<double>();
  metrics["moe_z_loss"] += terms.z.item<double>();
  metrics["moe_load_max_over_mean"] += terms.load_max_over_mean * share;
  metrics["moe_load_min_over_mean"] += terms.load_min_over_mean * share;
  return loss;
}

std::optional<EvalSums> Sft::evaluate(CausalLM& model) {
  if (eval_rows_.empty()) return std::nullopt;
  torch::NoGradGuard no_grad;
  EvalSums sums;
  const int64_t mbs = cfg_.trainer.micro_batch_size;
  std::vector<PackedRow> mine;
  for (size_t i = dp_rank_; i < eval_rows_.size(); i += dp_size_) mine.push_back(eval_rows_[i]);
  // Every dp rank runs the same number of forwards (expert parallelism exchanges tokens inside each
  // one); a rank out of rows runs one row of padding, which has no targets.
  const size_t most = (eval_rows_.size() + dp_size_ - 1) / dp_size_;
  for (size_t s = 0; s < most; s += mbs) {
    std::vector<PackedRow> chunk(mine.begin() + std::min(mine.size(), s), mine.begin() + std::min(mine.size(), s + mbs));
    if (chunk.empty()) chunk.emplace_back();
    auto mb = make_micro_batch(eval_, chunk, cfg_.data.max_seq_len);
    sums.loss_sum += sft_loss_sum(model, mb, cfg_.model.loss_chunk_tokens).item<double>();
    sums.targets += mb.num_targets;
  }
  return sums;
}

void Sft::end_step(CausalLM& model, parallel::Communicator& dp) {
  const double rate = cfg_.moe.bias_update_rate;
  if (rate == 0 || !step_counts_.defined()) return;
  auto counts = step_counts_.to(torch::kFloat64).contiguous();
  dp.allreduce(counts);  // every dp rank (ep ranks included) routed its own tokens
  update_correction_bias(model, counts, rate);
}

nlohmann::json Sft::state() const { return {{"epoch", stream_->epoch()}, {"row", stream_->position()}}; }

void Sft::load_state(const nlohmann::json& state) {
  stream_->seek(state.at("epoch").get<int64_t>(), state.at("row").get<int64_t>());
}

}  // namespace distillery
