// Shared fixtures for the unit tests: tiny model configs of each family and temp directories.
#pragma once

#include <filesystem>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

namespace distillery::testing {

inline nlohmann::json tiny_config(const std::string& model_type) {
  nlohmann::json j = {{"model_type", model_type},
                      {"vocab_size", 97},
                      {"hidden_size", 32},
                      {"intermediate_size", 48},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},
                      {"num_key_value_heads", 2},
                      {"max_position_embeddings", 256},
                      {"rms_norm_eps", 1e-6},
                      {"rope_theta", 10000.0},
                      {"hidden_act", "silu"},
                      {"initializer_range", 0.02},
                      {"tie_word_embeddings", false}};
  if (model_type == "qwen3") j["head_dim"] = 16;  // explicit, != hidden/heads
  if (model_type == "llama")
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  if (model_type == "mistral") j["sliding_window"] = 5;
  return j;
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("distillery-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string str() const { return path_.string(); }
  std::string operator/(const std::string& leaf) const { return (path_ / leaf).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace distillery::testing
