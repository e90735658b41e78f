#include "parallel/embedding.h"

#include "parallel/vocab_parallel.h"
#include "common/error.h"

namespace distillery {

VocabEmbeddingImpl::VocabEmbeddingImpl(int64_t vocab, int64_t hidden, const parallel::ModelParallel& mp) {
  if (mp.tp_size() > 1) {
    DIST_ASSERT(vocab % mp.tp_size() == 0, "vocab ", vocab, " over tp ", mp.tp_size());
    tp_ = mp.tp;
    vocab /= mp.tp_size();
    start_ = mp.tp_rank() * vocab;
  }
  weight = register_parameter("weight", torch::empty({vocab, hidden}));
}

torch::Tensor VocabEmbeddingImpl::forward(const torch::Tensor& ids) {
  if (!tp_) return torch::embedding(weight, ids);
  return parallel::vocab_parallel_embedding(ids, weight, start_, tp_);
}

std::vector<std::pair<std::string, parallel::TpShard>> VocabEmbeddingImpl::tp_shards() const {
  if (!tp_) return {};
  parallel::TpShard s;
  s.dim = 0, s.index = tp_->rank(), s.parts = tp_->size();
  return {{"weight", s}};
}

}  // namespace distillery
