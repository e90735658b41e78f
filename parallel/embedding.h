// The token embedding, split over the tensor-parallel group by vocabulary rows: rank r holds
// rows [r V/tp, (r+1) V/tp). A lookup takes the rows this rank holds (zeros elsewhere) and sums
// over tp, so every rank gets the full [B, T, hidden]. With tp=1 it is torch::embedding.
#pragma once

#include <torch/torch.h>

#include "parallel/tp_shard.h"

namespace distillery {

class VocabEmbeddingImpl : public torch::nn::Module, public parallel::TpSharded {
 public:
  VocabEmbeddingImpl(int64_t vocab_size, int64_t hidden, const parallel::ModelParallel& mp = {});
  torch::Tensor forward(const torch::Tensor& ids);  // [..] int64 -> [.., hidden]
  std::vector<std::pair<std::string, parallel::TpShard>> tp_shards() const override;
  int64_t vocab_start() const { return start_; }
  const std::shared_ptr<parallel::Communicator>& tp() const { return tp_; }
  torch::Tensor weight;  // [V/tp, hidden]

 private:
  std::shared_ptr<parallel::Communicator> tp_;  // set when split (tp > 1)
  int64_t start_ = 0;
};
TORCH_MODULE(VocabEmbedding);

}  // namespace distillery
