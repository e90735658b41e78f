#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/unit/test_util.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "models/hf_model.h"
#include "common/safetensors.h"

using namespace distillery;
using distillery::testing::TempDir;
using distillery::testing::tiny_config;

TEST(Safetensors, RoundTripsEveryDtypeBitExactly) {
  TempDir dir;
  std::vector<std::pair<std::string, torch::Tensor>> in;
  torch::manual_seed(0);
  for (auto dt : {torch::kFloat32, torch::kBFloat16, torch::kFloat16})
    in.emplace_back(dtype_to_safetensors(dt), torch::randn({3, 5}).to(dt));
  in.emplace_back("ids", torch::arange(7, torch::kInt64));
  save_safetensors(dir / "t.safetensors", in, {{"format", "pt"}});
  SafetensorsFile f(dir / "t.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (const auto& [name, t] : in) {
    auto back = f.view(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(back, t)) << name;
  }
  EXPECT_EQ(f.entries().at("BF16").shape, (std::vector<int64_t>{3, 5}));
}

TEST(Safetensors, HeaderLayoutIsTheStandardOne) {
  TempDir dir;
  save_safetensors(dir / "a.safetensors", {{"w", torch::ones({2}, torch::kFloat32)}});
  std::string bytes = read_text_file(dir / "a.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["w"]["dtype"], "F32");
  EXPECT_EQ(header["w"]["data_offsets"], nlohmann::json({0, 8}));
  EXPECT_EQ(bytes.size(), 8 + n + 8);
}

TEST(Safetensors, ShardedSetRoundTripsThroughIndex) {
  TempDir dir;
  std::vector<std::pair<std::string, torch::Tensor>> in;
  for (int i = 0; i < 5; ++i) in.emplace_back("t" + std::to_string(i), torch::full({64}, static_cast<float>(i)));
  save_safetensors_dir(dir.str(), in, /*max_shard_bytes=*/600);  // 256 B each -> 3 shards
  EXPECT_TRUE(std::filesystem::exists(dir / "model-00001-of-00003.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(dir / "model-00003-of-00003.safetensors"));
  auto index = read_json_file(dir / "model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"], 5 * 256);
  EXPECT_EQ(index["weight_map"]["t4"], "model-00003-of-00003.safetensors");
  auto set = SafetensorsSet::open_dir(dir.str());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(set.load("t" + std::to_string(i), torch::kFloat32)[0].item<float>(), i);
}

TEST(Safetensors, DirWriterFilledOutOfOrderWritesTheSameBytes) {
  // Tensors written one at a time in reverse order give the files save_safetensors_dir writes,
  // single-file and sharded (with the index).
  TempDir dir;
  std::vector<std::pair<std::string, torch::Tensor>> t = {{"b.weight", torch::randn({5, 3})},
                                                          {"a.bias", torch::arange(7, torch::kInt64)},
                                                          {"c.w", torch::randn({4}).to(torch::kBFloat16)}};
  auto read = [](const std::string& path) { return read_text_file(path); };
  for (int64_t max_bytes : {int64_t{1} << 20, int64_t{64}}) {
    const std::string a = dir.str() + "/a" + std::to_string(max_bytes), b = dir.str() + "/b" + std::to_string(max_bytes);
    std::filesystem::create_directories(a);
    std::filesystem::create_directories(b);
    save_safetensors_dir(a, t, max_bytes);
    std::vector<TensorMeta> plan;
    for (const auto& [n, x] : t) plan.push_back({n, x.scalar_type(), x.sizes().vec()});
    SafetensorsDirWriter w(b, plan, max_bytes);
    EXPECT_FALSE(std::filesystem::exists(b + "/model.safetensors"));  // nothing visible before commit
    for (auto it = t.rbegin(); it != t.rend(); ++it) w.write(it->first, it->second);
    w.commit();
    size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(a)) {
      ++files;
      EXPECT_EQ(read(e.path().string()), read(b + "/" + e.path().filename().string())) << e.path();
    }
    EXPECT_EQ(files, max_bytes == 64 ? 3u : 1u);  // 60 | 56 + 8 bytes in 64-byte shards: 2 files + index
  }
}

TEST(Safetensors, DirWriterRejectsAShapeOffPlanAndAnUnfinishedCommit) {
  TempDir dir;
  SafetensorsDirWriter w(dir.str(), {{"x", torch::kFloat32, {2, 2}}, {"y", torch::kFloat32, {3}}}, 1 << 20);
  EXPECT_ANY_THROW(w.write("x", torch::zeros({4})));
  w.write("x", torch::zeros({2, 2}));
  EXPECT_ANY_THROW(w.commit());  // y was never written
  EXPECT_FALSE(std::filesystem::exists(dir.str() + "/model.safetensors"));
}

TEST(Safetensors, TruncatedFileIsAUserErrorNamingIt) {
  TempDir dir;
  save_safetensors(dir / "a.safetensors", {{"w", torch::ones({4})}});
  std::string bytes = read_text_file(dir / "a.safetensors");
  write_text_file(dir / "a.safetensors", bytes.substr(0, bytes.size() - 4));
  try {
    SafetensorsFile f(dir / "a.safetensors");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("a.safetensors: tensor 'w'"), std::string::npos) << e.what();
  }
}

TEST(HfModel, SaveLoadRoundTripKeepsWeightsAndConfig) {
  TempDir dir;
  auto cfg = TransformerConfig::from_json(tiny_config("qwen3"), "c");
  CausalLM a(cfg);
  a->init_weights(3);
  write_text_file(dir / "src_tokenizer_config.json", "{}");
  save_hf_model(a, dir / "m", "", torch::kFloat32, int64_t{1} << 30);
  auto b = load_hf_model(dir / "m");
  auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i].value(), pb[i].value())) << pa[i].key();
  auto j = read_json_file(dir / "m/config.json");
  EXPECT_EQ(j["model_type"], "qwen3");
  EXPECT_EQ(j["torch_dtype"], "float32");
  EXPECT_FALSE(std::filesystem::exists(dir / "m.tmp"));
}

TEST(HfModel, Bf16SaveIsBf16OnDisk) {
  TempDir dir;
  CausalLM a(TransformerConfig::from_json(tiny_config("llama"), "c"));
  a->init_weights(3);
  save_hf_model(a, dir / "m", "", torch::kBFloat16, int64_t{1} << 30);
  SafetensorsFile f(dir / "m/model.safetensors");
  EXPECT_EQ(f.entries().at("model.norm.weight").dtype, torch::kBFloat16);
  EXPECT_EQ(read_json_file(dir / "m/config.json")["torch_dtype"], "bfloat16");
}

TEST(HfModel, ShapeMismatchNamesTensorAndBothShapes) {
  TempDir dir;
  CausalLM a(TransformerConfig::from_json(tiny_config("qwen2"), "c"));
  a->init_weights(3);
  save_hf_model(a, dir / "m", "", torch::kFloat32, int64_t{1} << 30);
  auto j = tiny_config("qwen2");
  j["intermediate_size"] = 40;
  write_json_file(dir / "m/config.json", j);
  try {
    load_hf_model(dir / "m");
    FAIL();
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tensor 'model.layers.0.mlp.gate_proj.weight' has shape [48, 32], expected [40, 32]"),
              std::string::npos)
        << msg;
  }
}

TEST(HfModel, MissingTensorIsNamed) {
  TempDir dir;
  CausalLM a(TransformerConfig::from_json(tiny_config("qwen2"), "c"));
  a->init_weights(3);
  std::vector<std::pair<std::string, torch::Tensor>> sd = hf_state_dict(a, torch::kFloat32);
  sd.erase(std::remove_if(sd.begin(), sd.end(), [](auto& p) { return p.first == "model.norm.weight"; }), sd.end());
  std::filesystem::create_directories(dir / "m");
  save_safetensors(dir / "m/model.safetensors", sd);
  write_json_file(dir / "m/config.json", tiny_config("qwen2"));
  try {
    load_hf_model(dir / "m");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'model.norm.weight'"), std::string::npos) << e.what();
  }
}

TEST(HfModel, AnIntegerOrBoolTensorForAFloatParameterIsAnErrorNamingFileAndTensor) {
  // Casting would load garbage weights (or 0/1 for bool) silently; a float dtype of another width is fine.
  for (auto dt : {torch::kInt32, torch::kInt64, torch::kUInt8, torch::kBool}) {
    TempDir dir;
    CausalLM a(TransformerConfig::from_json(tiny_config("qwen2"), "c"));
    a->init_weights(3);
    auto sd = hf_state_dict(a, torch::kFloat32);
    for (auto& p : sd)
      if (p.first == "model.layers.1.mlp.up_proj.weight") p.second = torch::ones(p.second.sizes(), dt);
    std::filesystem::create_directories(dir / "m");
    save_safetensors(dir / "m/model.safetensors", sd);
    write_json_file(dir / "m/config.json", tiny_config("qwen2"));
    try {
      load_hf_model(dir / "m");
      ADD_FAILURE() << "loaded a " << dtype_to_safetensors(dt) << " weight";
    } catch (const UserError& e) {
      EXPECT_EQ(std::string(e.what()), (dir / "m/model.safetensors") + ": tensor 'model.layers.1.mlp.up_proj.weight' is stored as " +
                                           dtype_to_safetensors(dt) +
                                           ", which cannot hold the F32 parameter (a floating-point dtype is needed)");
    }
  }
  TempDir dir;
  CausalLM a(TransformerConfig::from_json(tiny_config("qwen2"), "c"));
  a->init_weights(3);
  auto sd = hf_state_dict(a, torch::kFloat16);
  std::filesystem::create_directories(dir / "m");
  save_safetensors(dir / "m/model.safetensors", sd);
  write_json_file(dir / "m/config.json", tiny_config("qwen2"));
  EXPECT_NO_THROW(load_hf_model(dir / "m"));
}

// A checkpoint with NaN or Inf in a weight would train to `loss nan`: refused, naming the tensor.
TEST(HfModel, ANonFiniteWeightIsAnErrorNamingFileAndTensor) {
  TempDir dir;
  CausalLM a(TransformerConfig::from_json(tiny_config("qwen2"), "c"));
  a->init_weights(3);
  auto sd = hf_state_dict(a, torch::kFloat32);
  for (auto& p : sd)
    if (p.first == "model.layers.0.self_attn.o_proj.weight") {
      p.second = p.second.clone();
      p.second.view(-1)[5] = std::numeric_limits<float>::quiet_NaN();
      p.second.view(-1)[7] = std::numeric_limits<float>::infinity();
    }
  std::filesystem::create_directories(dir / "m");
  save_safetensors(dir / "m/model.safetensors", sd);
  write_json_file(dir / "m/config.json", tiny_config("qwen2"));
  try {
    load_hf_model(dir / "m");
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "m/model.safetensors") +
                                         ": tensor 'model.layers.0.self_attn.o_proj.weight' holds 2 non-finite "
                                         "value(s) (NaN or Inf) out of " +
                                         std::to_string(a->named_parameters()["model.layers.0.self_attn.o_proj.weight"].numel()));
  }
}
