#include "algorithms/sft/sft.h"

#include <filesystem>
#include <numeric>
#include <sstream>

#include "common/error.h"
#include "models/lm_head.h"

namespace distillery {

Sft::Sft(AlgorithmContext& ctx)
    : cfg_(ctx.recipe), model_(ctx.policy), dp_rank_(ctx.mesh.dp()->rank()), dp_size_(ctx.mesh.dp()->size()) {
  const int64_t vocab_size = model_->config().vocab_size;
  const TextPipeline text = load_text_pipeline(cfg_.data, cfg_.model.path);
  train_ = build_examples(cfg_.data, cfg_.data.train, text, vocab_size);
  stream_ = std::make_unique<RowStream>(train_, cfg_.data.max_seq_len, cfg_.data.truncation, cfg_.data.packing,
                                        cfg_.data.shuffle, static_cast<uint64_t>(cfg_.trainer.seed));
  if (!cfg_.data.eval.empty()) {
    eval_ = build_examples(cfg_.data, cfg_.data.eval, text, vocab_size);
    std::vector<uint32_t> order(eval_.size());
    std::iota(order.begin(), order.end(), 0u);
    eval_rows_ = pack_rows(eval_, order, cfg_.data.max_seq_len, cfg_.data.truncation, cfg_.data.packing, nullptr);
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

Sft::Step Sft::make_step() {
  const int64_t mbs = cfg_.trainer.micro_batch_size, accum = cfg_.trainer.grad_accum_steps;
  const int64_t per_rank = mbs * accum;
  // Every rank draws the same global rows, so the normalizer needs no communication and the
  // step is the same whatever the dp size.
  auto rows = stream_->take(per_rank * dp_size_);
  Step out;
  for (const auto& r : rows) {
    out.global_targets += count_targets(train_, r);
    for (const auto& p : r) out.global_tokens += p.length;
  }
  for (int64_t m = 0; m < accum; ++m) {
    auto first = rows.begin() + dp_rank_ * per_rank + m * mbs;
    out.micro.push_back(make_packed_batch(train_, std::vector<PackedRow>(first, first + mbs), cfg_.data.max_seq_len));
  }
  return out;
}

torch::Tensor sft_loss_sum(CausalLM& model, const PackedBatch& mb, int64_t chunk_tokens) {
  auto hidden = model->forward({mb.input_ids, mb.position_ids, mb.doc_ids});  // [B, T, H]
  auto [h, t] = select_targets(hidden, mb.targets);                          // [N, H], [N]
  return model->cross_entropy_sum(h, t, chunk_tokens);
}

torch::Tensor Sft::loss(const PackedBatch& mb, int64_t global_targets, MetricSums&) {
  return sft_loss_sum(model_, mb, cfg_.model.loss_chunk_tokens) / static_cast<double>(std::max<int64_t>(1, global_targets));
}

std::optional<MetricSums> Sft::evaluate() {
  if (eval_rows_.empty()) return std::nullopt;
  MetricSums sums;
  const int64_t mbs = cfg_.trainer.micro_batch_size;
  std::vector<PackedRow> mine;
  for (size_t i = dp_rank_; i < eval_rows_.size(); i += dp_size_) mine.push_back(eval_rows_[i]);
  // Every dp rank runs the same number of forwards (expert parallelism exchanges tokens inside each
  // one); a rank out of rows runs one row of padding, which has no targets.
  const size_t most = (eval_rows_.size() + dp_size_ - 1) / dp_size_;
  double loss = 0;
  int64_t targets = 0;
  for (size_t s = 0; s < most; s += mbs) {
    std::vector<PackedRow> chunk(mine.begin() + std::min(mine.size(), s), mine.begin() + std::min(mine.size(), s + mbs));
    if (chunk.empty()) chunk.emplace_back();
    auto mb = make_packed_batch(eval_, chunk, cfg_.data.max_seq_len);
    loss += sft_loss_sum(model_, mb, cfg_.model.loss_chunk_tokens).item<double>();
    targets += mb.num_targets;
  }
  sums.add("loss", loss);
  sums.add("loss_count", static_cast<double>(targets));
  return sums;
}

nlohmann::json Sft::state() const { return {{"epoch", stream_->epoch()}, {"row", stream_->position()}}; }

void Sft::load_state(const nlohmann::json& state) {
  stream_->seek(state.at("epoch").get<int64_t>(), state.at("row").get<int64_t>());
}

// What fixes the sequence of global batches. How the global batch is split over micro-batches,
// accumulation and ranks does not change the math (losses are normalized over the global batch),
// so only its size is compared (the trainer compares "rows" of an object value).
nlohmann::json Sft::data_order() const {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(cfg_.data.train, ec);
  const int64_t rows = cfg_.trainer.micro_batch_size * cfg_.trainer.grad_accum_steps * dp_size_;
  return {{"global batch rows (micro_batch_size x grad_accum_steps x data-parallel ranks)",
           {{"rows", rows},
            {"split", std::to_string(cfg_.trainer.micro_batch_size) + "x" + std::to_string(cfg_.trainer.grad_accum_steps) +
                          "x" + std::to_string(dp_size_)}}},
          {"trainer.seed", cfg_.trainer.seed},
          {"data.train", cfg_.data.train},
          {"data.train bytes", ec ? -1 : static_cast<int64_t>(bytes)},
          {"data.format", cfg_.data.format},
          {"data.max_seq_len", cfg_.data.max_seq_len},
          {"data.packing", cfg_.data.packing},
          {"data.shuffle", cfg_.data.shuffle}};
}

}  // namespace distillery
