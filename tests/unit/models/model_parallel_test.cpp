// The single-process parts of tensor / expert parallelism: which layouts a config allows (the
// errors a user sees), shard placement arithmetic and routed-expert names. The multi-rank
// behaviour is in tests/dist/model_parallel_dist_test.cpp.
#include <gtest/gtest.h>

#include "tests/unit/moe_test_util.h"
#include "parallel/model_shards.h"
#include "common/error.h"
#include "models/hf_model.h"

namespace distillery {
namespace {

std::string layout_error(const nlohmann::json& j, int tp, int ep) {
  try {
    check_parallel_layout(TransformerConfig::from_json(j, "m/config.json"), tp, ep, "m/config.json");
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(ParallelLayout, NamesEveryDimensionTheSplitDoesNotDivide) {
  auto j = testing::tiny_config("qwen3");  // 4 heads, 2 kv heads, vocab 97, intermediate 48
  EXPECT_EQ(layout_error(j, 1, 1), "");
  const auto e = layout_error(j, 8, 1);
  EXPECT_NE(e.find("m/config.json: cannot split this model"), std::string::npos) << e;
  EXPECT_NE(e.find("parallel.tp=8 does not divide num_attention_heads 4"), std::string::npos) << e;
  EXPECT_NE(e.find("vocab_size 97"), std::string::npos) << e;
  j["vocab_size"] = 128;
  EXPECT_EQ(layout_error(j, 4, 1), "");  // kv heads 2 < tp 4: replicated, allowed
  j["num_key_value_heads"] = 3;
  j["num_attention_heads"] = 12;
  EXPECT_NE(layout_error(j, 4, 1).find("num_key_value_heads 3"), std::string::npos);
  EXPECT_NE(layout_error(testing::tiny_config("qwen3"), 1, 2).find("parallel.ep=2 needs a mixture-of-experts model"),
            std::string::npos);
}

TEST(ParallelLayout, ExpertParallelismMustDivideTheExperts) {
  auto j = testing::tiny_moe_config("qwen3_moe");  // 4 experts
  EXPECT_EQ(layout_error(j, 1, 4), "");
  EXPECT_NE(layout_error(j, 1, 3).find("parallel.ep=3 does not divide the 4 routed experts"), std::string::npos);
  EXPECT_NE(layout_error(j, 32, 1).find("moe_intermediate_size 16"), std::string::npos);
}

TEST(ModelShards, SlicesAndFullShapesAgree) {
  parallel::TpShard s;
  s.dim = 1, s.index = 2, s.parts = 4;
  auto full = torch::arange(24).view({2, 12});
  auto local = parallel::local_slice(full, s);
  EXPECT_TRUE(torch::equal(local, full.narrow(1, 6, 3)));
  EXPECT_EQ(parallel::full_shape(local, s), (std::vector<int64_t>{2, 12}));
  parallel::ShardMap m{{"a.weight", s}};
  EXPECT_EQ(parallel::shard_of(m, "a.weight.exp_avg_sq").parts, 4);
  EXPECT_EQ(parallel::shard_of(m, "a.weight.master").dim, 1);
  EXPECT_FALSE(parallel::shard_of(m, "b.weight").sharded());
  // Copies over world 8: a 4-way slice is held by 2 ranks; an expert over ep 2 as well by 4.
  EXPECT_EQ(parallel::param_copies("a.weight", s, 8, 2), 2.0);
  EXPECT_EQ(parallel::param_copies("model.layers.1.mlp.experts.3.up_proj.weight", {}, 8, 2), 4.0);
}

TEST(ModelShards, ParsesRoutedExpertNames) {
  auto e = parallel::parse_expert_name("model.layers.1.mlp.experts.12.down_proj.weight");
  EXPECT_EQ(e.expert, 12);
  EXPECT_EQ(e.with_expert("model.layers.1.mlp.experts.12.down_proj.weight", 3),
            "model.layers.1.mlp.experts.3.down_proj.weight");
  EXPECT_EQ(e.prefix_of("model.layers.1.mlp.experts.12.down_proj.weight"), "model.layers.1.mlp.experts.");
  EXPECT_EQ(parallel::parse_expert_name("model.layers.1.mlp.shared_experts.up_proj.weight").expert, -1);
  EXPECT_EQ(parallel::parse_expert_name("model.layers.1.mlp.experts.x.w").expert, -1);
}

TEST(ModelShards, WholeModelHasNoShardsAndGathersToItself) {
  CausalLM m(TransformerConfig::from_json(testing::tiny_moe_config("deepseek_v3"), "c"));
  m->init_weights(1);
  EXPECT_TRUE(parallel::tp_shard_map(*m).empty());
  auto a = hf_state_dict(m, torch::kFloat32);
  std::vector<std::string> names;
  for (auto& np : hf_named_tensors(m)) names.push_back(np.first);
  ASSERT_EQ(a.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(a[i].first, names[i]);
}

}  // namespace
}  // namespace distillery
