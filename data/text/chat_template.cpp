#include "data/text/chat_template.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/text/jinja_builtins.h"
#include "data/text/jinja_interpreter.h"
#include "data/text/jinja_json.h"
#include "data/text/jinja_parser.h"
#include "common/error.h"

namespace distillery::text {
namespace chat_template_detail {

std::string located(const std::string& origin, const jinja::TemplateError& e, const char* prefix = "") {
  std::string where = e.line > 0 ? origin + " line " + std::to_string(e.line) : origin;
  return where + ": " + prefix + e.what();
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buf;
  buf << in.rdbuf();
  out = buf.str();
  return true;
}

bool has_generation(const jinja::Body& body) {
  for (const auto& s : body) {
    if (s->kind == jinja::StmtKind::Generation || has_generation(s->body) || has_generation(s->else_body)) return true;
    for (const auto& branch : s->branches)
      if (has_generation(branch.second)) return true;
  }
  return false;
}

}  // namespace chat_template_detail

ChatTemplate::ChatTemplate(std::string source, std::string origin)
    : source_(std::move(source)), origin_(std::move(origin)) {
  try {
    tree_ = std::make_shared<const jinja::Template>(jinja::parse_template(source_));
  } catch (const jinja::TemplateError& e) {
    throw UserError(chat_template_detail::located(origin_, e));
  }
  has_generation_ = chat_template_detail::has_generation(tree_->body);
}

template <typename Json>
ChatTemplate::Tracked ChatTemplate::render_json(const Json& context) const {
  DIST_CHECK(context.is_object(), origin_, ": the render context must be a JSON object, got ", context.type_name());
  try {
    jinja::Interpreter interpreter(jinja::from_json(context));
    Tracked out{interpreter.render(*tree_), interpreter.generation_spans()};
    DIST_CHECK(!interpreter.generation_nested(), origin_,
               ": a {% generation %} block is rendered inside a macro, set or filter block, so the text it marks "
               "has no known place in the output; put the markers around the output itself");
    return out;
  } catch (const jinja::RaisedError& e) {
    throw UserError(chat_template_detail::located(origin_, e, "raise_exception: "));
  } catch (const jinja::TemplateError& e) {
    throw UserError(chat_template_detail::located(origin_, e));
  }
}

std::string ChatTemplate::render(const nlohmann::json& context) const { return render_json(context).text; }
std::string ChatTemplate::render(const nlohmann::ordered_json& context) const { return render_json(context).text; }
ChatTemplate::Tracked ChatTemplate::render_tracked(const nlohmann::ordered_json& context) const {
  return render_json(context);
}

ChatTemplate load_chat_template(const std::string& model_dir, const std::string& name) {
  std::string source;
  const std::string jinja_path = model_dir + "/chat_template.jinja";
  if (chat_template_detail::read_file(jinja_path, source)) return ChatTemplate(std::move(source), jinja_path);

  const std::string config_path = model_dir + "/tokenizer_config.json";
  std::string text;
  DIST_CHECK(chat_template_detail::read_file(config_path, text), model_dir,
             ": no chat template (neither chat_template.jinja nor tokenizer_config.json exists)");
  nlohmann::json config = nlohmann::json::parse(text, nullptr, false);
  DIST_CHECK(!config.is_discarded() && config.is_object(), config_path, ": not a valid JSON object");
  auto it = config.find("chat_template");
  DIST_CHECK(it != config.end() && !it->is_null(), config_path, ": has no \"chat_template\"");
  if (it->is_string()) return ChatTemplate(it->get<std::string>(), config_path + ": chat_template");

  DIST_CHECK(it->is_array(), config_path, ": \"chat_template\" must be a string or a list of {name, template}");
  const std::string wanted = name.empty() ? "default" : name;
  std::string available;
  for (const auto& entry : *it) {
    DIST_CHECK(entry.is_object() && entry.contains("name") && entry.contains("template") &&
                   entry["name"].is_string() && entry["template"].is_string(),
               config_path, ": each \"chat_template\" entry needs string \"name\" and \"template\"");
    const std::string entry_name = entry["name"].get<std::string>();
    if (entry_name == wanted)
      return ChatTemplate(entry["template"].get<std::string>(), config_path + ": chat_template[" + entry_name + "]");
    available += (available.empty() ? "" : ", ") + entry_name;
  }
  DIST_FAIL(config_path, ": no chat template named '", wanted, "' (available: ", available, ")");
}

}  // namespace distillery::text
