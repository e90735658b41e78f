#include "cli/generate_command.h"

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>

#include "models/peft/adapt.h"
#include "data/jsonl.h"
#include "data/text/chat_context.h"
#include "data/text/chat_template.h"
#include "data/text/tokenizer.h"
#include "parallel/mesh.h"
#include "cli/cli_args.h"
#include "common/error.h"
#include "common/fs_util.h"
#include "generation/generate.h"
#include "models/hf_model.h"

namespace distillery {
namespace fs = std::filesystem;

const char* generate_command_usage() {
  return "  generate --model DIR --input F.jsonl --output F.jsonl [--adapter DIR] [--max-new-tokens N]\n"
         "           [--temperature T] [--top-k K] [--top-p P] [--seed S] [--batch-size B]\n"
         "           [--enable-thinking true|false] [--dtype fp32|bf16] [--tp N] [--ep N]\n"
         "                                           sample completions of {\"messages\"} (chat template; a final\n"
         "                                           assistant message is dropped) or {\"prompt\"} lines, adding\n"
         "                                           completion/finish_reason; mpirun -np N for dp x tp x ep\n";
}

namespace generate_cmd_detail {

const std::vector<std::string> kOptions = {"--model",          "--input",       "--output", "--adapter",
                                           "--max-new-tokens", "--temperature", "--top-k",  "--top-p",
                                           "--seed",           "--batch-size",  "--enable-thinking",
                                           "--dtype",          "--tp",          "--ep"};

}  // namespace generate_cmd_detail

std::vector<int32_t> prompt_ids(const nlohmann::ordered_json& rec, const std::string& where, const text::Tokenizer& tok,
                                const text::ChatTemplate* chat, std::optional<bool> enable_thinking) {
  if (rec.is_object() && rec.contains("messages")) {
    DIST_CHECK(rec["messages"].is_array() && !rec["messages"].empty(), where, ": 'messages' must be a non-empty list");
    DIST_CHECK(chat, where, ": 'messages' needs a chat template, and ", tok.directory(), " has none");
    auto messages = rec["messages"];
    // A trailing assistant message is the reference answer of an eval set, not part of the prompt.
    if (messages.back().is_object() && messages.back().value("role", "") == "assistant") messages.erase(messages.size() - 1);
    DIST_CHECK(!messages.empty(), where, ": 'messages' holds only an assistant message; nothing to answer");
    const std::string rendered = chat->render(text::chat_template_context(tok, messages, true, enable_thinking));
    return tok.encode(rendered, /*add_special_tokens=*/false);
  }
  DIST_CHECK(rec.is_object() && rec.contains("prompt") && rec["prompt"].is_string(), where,
             ": expected a 'messages' list or a 'prompt' string");
  auto ids = tok.encode(rec["prompt"].get<std::string>(), /*add_special_tokens=*/true);
  DIST_CHECK(!ids.empty(), where, ": empty prompt");
  return ids;
}

int run_generate_command(const std::vector<std::string>& argv, const std::shared_ptr<parallel::Communicator>& world) {
  using namespace generate_cmd_detail;
  const Args o = parse_args("generate", argv, kOptions);
  DIST_CHECK(o.positional.empty(), "distillery generate: unexpected argument '",
             o.positional.empty() ? "" : o.positional[0], "'");
  for (const char* k : {"--model", "--input", "--output"}) o.need("generate", k);
  SamplingParams sp;
  sp.max_new_tokens = o.integer("--max-new-tokens", 256);
  sp.temperature = o.number("--temperature", 1.0);
  sp.top_k = o.integer("--top-k", 0);
  sp.top_p = o.number("--top-p", 1.0);
  DIST_CHECK(sp.max_new_tokens >= 1, "distillery generate: --max-new-tokens must be >= 1");
  DIST_CHECK(sp.temperature >= 0, "distillery generate: --temperature must be >= 0");
  DIST_CHECK(sp.top_k >= 0, "distillery generate: --top-k must be >= 0");
  DIST_CHECK(sp.top_p > 0 && sp.top_p <= 1, "distillery generate: --top-p must be in (0, 1]");
  const int64_t batch = o.integer("--batch-size", 16);
  DIST_CHECK(batch >= 1, "distillery generate: --batch-size must be >= 1");
  const uint64_t seed = static_cast<uint64_t>(o.integer("--seed", 0));
  std::optional<bool> thinking;
  if (o.flags.count("--enable-thinking")) {
    const std::string v = o.get("--enable-thinking");
    DIST_CHECK(v == "true" || v == "false", "distillery generate: --enable-thinking: expected true or false, got '", v,
               "'");
    thinking = v == "true";
  }
  const std::string model_dir = o.get("--model"), out_path = o.get("--output");

  parallel::Mesh mesh(world, {static_cast<int>(o.integer("--tp", 1)), static_cast<int>(o.integer("--ep", 1))});
  const parallel::ModelParallel mp{mesh.tp(), mesh.ep()};
  const torch::Dtype dtype = parse_dtype(o.get("--dtype", "fp32"));
  CausalLM model = o.flags.count("--adapter") ? load_adapted_model(o.get("--adapter"), model_dir, dtype, mp)
                                               : load_hf_model(model_dir, dtype, mp);
  model->eval();
  const auto tok = text::Tokenizer::load(model_dir);
  std::optional<text::ChatTemplate> chat;
  try {
    chat = text::load_chat_template(model_dir);
  } catch (const UserError&) {
    // No template: only {"prompt"} lines can be used (the error says so when a chat appears).
  }
  const auto stops = model_stop_ids(model_dir, tok.eos_id() ? std::optional<int64_t>(*tok.eos_id()) : std::nullopt);
  DIST_CHECK(!stops.empty(), model_dir, ": no eos_token_id in generation_config.json or config.json and no tokenizer ",
             "eos_token: generation would never stop early");

  JsonlFile in(o.get("--input"));
  const int64_t n = static_cast<int64_t>(in.size());
  DIST_CHECK(n > 0, in.path(), ": no prompts");
  // Batches go round-robin to the dp ranks; each batch samples with seed + its index, so the output
  // does not depend on the layout.
  const int64_t batches = (n + batch - 1) / batch, dp = mesh.dp_size(), rounds = (batches + dp - 1) / dp;
  parallel::Communicator* lockstep = mesh.ep_size() > 1 ? mesh.dp().get() : nullptr;
  const int64_t width = 3 + sp.max_new_tokens;  // index, stopped, length, tokens
  auto rows = torch::full({rounds * batch, width}, -1, torch::kInt64);
  auto out = rows.accessor<int64_t, 2>();
  int64_t filled = 0;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t new_tokens = 0;
  for (int64_t r = 0; r < rounds; ++r) {
    const int64_t g = r * dp + mesh.dp_rank();
    std::vector<std::vector<int32_t>> prompts;
    std::vector<int64_t> index;
    for (int64_t i = g * batch; g < batches && i < std::min(n, (g + 1) * batch); ++i) {
      prompts.push_back(prompt_ids(in.record(static_cast<size_t>(i)), in.where(static_cast<size_t>(i)), tok,
                                   chat ? &*chat : nullptr, thinking));
      for (int32_t id : prompts.back())
        DIST_CHECK(id < model->config().vocab_size, in.where(static_cast<size_t>(i)), ": token id ", id, " from ",
                   tok.directory(), " is outside the model's vocabulary (vocab_size=", model->config().vocab_size, ")");
      index.push_back(i);
    }
    auto gens = generate_batch(model, prompts, sp, stops, seed + static_cast<uint64_t>(std::max<int64_t>(g, 0)),
                               lockstep);
    for (size_t b = 0; b < gens.size(); ++b, ++filled) {
      out[filled][0] = index[b];
      out[filled][1] = gens[b].stopped ? 1 : 0;
      out[filled][2] = static_cast<int64_t>(gens[b].ids.size());
      for (size_t t = 0; t < gens[b].ids.size(); ++t) out[filled][3 + static_cast<int64_t>(t)] = gens[b].ids[t];
      new_tokens += static_cast<int64_t>(gens[b].ids.size());
    }
  }
  auto all = mesh.dp()->allgather(rows);  // [dp * rounds * batch, width], tp ranks hold the same
  auto total = torch::tensor({static_cast<double>(new_tokens)}, torch::kFloat64);
  mesh.dp()->allreduce(total);
  if (world->rank() != 0) return 0;
  const auto got = all.accessor<int64_t, 2>();
  std::vector<int64_t> at(static_cast<size_t>(n), -1);
  for (int64_t i = 0; i < all.size(0); ++i)
    if (got[i][0] >= 0) at[static_cast<size_t>(got[i][0])] = i;
  std::string text;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = at[static_cast<size_t>(i)];
    DIST_ASSERT(row >= 0, "generate: no result for prompt ", i);
    const int64_t len = got[row][2];
    std::vector<int32_t> ids;
    for (int64_t t = 0; t < len; ++t) ids.push_back(static_cast<int32_t>(got[row][3 + t]));
    const bool stopped = got[row][1] == 1;
    auto rec = in.record(static_cast<size_t>(i));
    if (!rec.is_object()) rec = nlohmann::ordered_json::object();
    rec["completion"] = tok.decode(ids, /*skip_special_tokens=*/true);
    rec["completion_tokens"] = len;
    rec["finish_reason"] = stopped ? "stop" : "length";
    text += rec.dump() + "\n";
  }
  if (!fs::path(out_path).parent_path().empty()) fs::create_directories(fs::path(out_path).parent_path());
  write_text_file(out_path, text);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "[distillery] wrote " << n << " completions to " << out_path << " (" << total[0].item<double>()
            << " new tokens in " << s << " s, " << total[0].item<double>() / std::max(s, 1e-9) << " tokens/s; "
            << mesh.describe() << ")\n";
  return 0;
}

}  // namespace distillery
