// Byte-for-byte parity with Python's jinja2 as transformers' apply_chat_template runs it: every
// template of tests/assets/chat_templates/templates.json (real tokenizer_config.json templates
// from node_modules plus transcribed ones) on every conversation of
// tests/assets/chat_conversations.jsonl and every flag combination. The expectations come from
// tests/parity/render_chat_reference.py; where jinja2 fails to render, distillery must fail too.
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "data/text/chat_template.h"
#include "common/error.h"

namespace chat_template_parity_test {

using nlohmann::ordered_json;
using distillery::text::ChatTemplate;

const std::string kRoot = DISTILLERY_SOURCE_DIR;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + " (for node_modules: run `npm install` in the repository root)");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<ordered_json> read_jsonl(const std::string& path) {
  std::vector<ordered_json> out;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(ordered_json::parse(line));
  return out;
}

ordered_json manifest() { return ordered_json::parse(read_text(kRoot + "/tests/assets/chat_templates/templates.json")); }

std::vector<std::string> template_ids() {
  std::vector<std::string> ids;
  try {
    for (const auto& entry : manifest()) ids.push_back(entry["id"].get<std::string>());
  } catch (const std::exception&) {
    ids.push_back("manifest_unreadable");
  }
  return ids;
}

ChatTemplate load(const ordered_json& entry) {
  if (entry.contains("model_dir")) {
    const std::string dir = kRoot + "/" + entry["model_dir"].get<std::string>();
    read_text(dir + "/tokenizer_config.json");  // a clear message when node_modules is missing
    return distillery::text::load_chat_template(dir);
  }
  const std::string path = entry["file"].get<std::string>();
  return ChatTemplate(read_text(kRoot + "/" + path), path);
}

// Where two renders part, with a little context, instead of two multi-kilobyte strings.
std::string first_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  size_t from = i > 40 ? i - 40 : 0;
  return "first difference at byte " + std::to_string(i) + "\n  jinja2:     " +
         ordered_json(want.substr(from, 100)).dump() + "\n  distillery: " + ordered_json(got.substr(from, 100)).dump();
}

std::string describe(const ordered_json& r) {
  std::string s = r["template"].get<std::string>() + " x " + r["conversation"].get<std::string>() +
                  " add_generation_prompt=" + r["add_generation_prompt"].dump();
  if (r.contains("enable_thinking")) s += " enable_thinking=" + r["enable_thinking"].dump();
  return s;
}

class ChatTemplateParity : public testing::TestWithParam<std::string> {};

TEST_P(ChatTemplateParity, MatchesJinja2ByteForByte) {
  const std::string id = GetParam();
  ordered_json entry;
  for (const auto& e : manifest())
    if (e["id"] == id) entry = e;
  ASSERT_FALSE(entry.is_null()) << "template " << id << " not in templates.json";
  const ChatTemplate tmpl = load(entry);

  std::map<std::string, ordered_json> messages;
  for (const auto& c : read_jsonl(kRoot + "/tests/assets/chat_conversations.jsonl"))
    messages[c["id"].get<std::string>()] = c["messages"];

  int checked = 0, matched = 0;
  for (const auto& r : read_jsonl(kRoot + "/tests/assets/chat_expected.jsonl")) {
    if (r["template"] != id) continue;
    ++checked;
    SCOPED_TRACE(describe(r));
    ordered_json context = ordered_json::object();
    context["messages"] = messages.at(r["conversation"].get<std::string>());
    for (auto it = r["variables"].begin(); it != r["variables"].end(); ++it) context[it.key()] = it.value();
    if (r.contains("expected")) {
      std::string got;
      try {
        got = tmpl.render(context);
      } catch (const distillery::UserError& e) {
        ADD_FAILURE() << "jinja2 renders this but distillery failed: " << e.what();
        continue;
      }
      const std::string want = r["expected"].get<std::string>();
      if (got == want) ++matched;
      else ADD_FAILURE() << first_difference(want, got);
    } else {
      const std::string reason = r.contains("raised") ? r["raised"].get<std::string>() : r["error"].get<std::string>();
      try {
        tmpl.render(context);
        ADD_FAILURE() << "jinja2 fails (" << reason << ") but distillery rendered";
      } catch (const distillery::UserError& e) {
        // A raise_exception() message must reach the user unchanged.
        if (r.contains("raised") && std::string(e.what()).find(reason) == std::string::npos)
          ADD_FAILURE() << "error '" << e.what() << "' lacks the template's message '" << reason << "'";
        else
          ++matched;
      }
    }
  }
  EXPECT_GT(checked, 0) << "no expectations for " << id << ": rerun tests/parity/render_chat_reference.py";
  EXPECT_EQ(matched, checked);
  std::printf("[ parity   ] %s: %d/%d renders match jinja2\n", id.c_str(), matched, checked);
}

INSTANTIATE_TEST_SUITE_P(AllTemplates, ChatTemplateParity, testing::ValuesIn(template_ids()),
                         [](const testing::TestParamInfo<std::string>& info) { return info.param; });

// The expectations cover the full cross product, so a conversation added without rerunning the
// reference script (or a template dropped from it) is caught.
TEST(ChatTemplateParityData, CoversEveryTemplateConversationAndFlag) {
  const auto conversations = read_jsonl(kRoot + "/tests/assets/chat_conversations.jsonl");
  size_t combinations = 0;
  for (const auto& entry : manifest())
    combinations += conversations.size() * 2 * (entry.value("thinking_flag", false) ? 3 : 1);
  EXPECT_EQ(read_jsonl(kRoot + "/tests/assets/chat_expected.jsonl").size(), combinations);
}

}  // namespace chat_template_parity_test
