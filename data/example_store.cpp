#include "data/example_store.h"

#include "data/jsonl.h"
#include "common/error.h"
#include "common/ignore_index.h"

namespace distillery {

void ExampleStore::add(const std::vector<int32_t>& ids, const std::vector<int32_t>& labels) {
  DIST_ASSERT(ids.size() == labels.size());
  begin_.push_back(ids_.size());
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  labels_.insert(labels_.end(), labels.begin(), labels.end());
  end_.push_back(ids_.size());
  if (targets(size() - 1, length(size() - 1)) == 0) ++without_targets_;
}

int64_t ExampleStore::targets(size_t i, int64_t len) const {
  const int32_t* l = labels(i);
  int64_t n = 0;
  for (int64_t t = 1; t < len; ++t) n += l[t] != kIgnoreIndex;
  return n;
}

namespace {
std::vector<int32_t> read_id_list(const nlohmann::ordered_json& rec, const char* key, const std::string& where,
                                  int64_t vocab_size, bool allow_ignore) {
  const auto& v = rec.at(key);
  DIST_CHECK(v.is_array(), where, ": '", key, "' must be a list of integers");
  std::vector<int32_t> out;
  out.reserve(v.size());
  for (size_t k = 0; k < v.size(); ++k) {
    DIST_CHECK(v[k].is_number_integer(), where, ": ", key, "[", k, "] is not an integer");
    const int64_t x = v[k].get<int64_t>();
    const bool ok = (x >= 0 && x < vocab_size) || (allow_ignore && x == kIgnoreIndex);
    DIST_CHECK(ok, where, ": ", key, "[", k, "]=", x, " is outside the model's vocabulary [0, ", vocab_size, ")");
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}
}  // namespace

ExampleStore load_tokenized_jsonl(const std::string& path, int64_t vocab_size) {
  JsonlFile file(path);
  DIST_CHECK(file.size() > 0, path, ": no examples");
  ExampleStore store;
  for (size_t i = 0; i < file.size(); ++i) {
    const auto rec = file.record(i);
    const std::string where = file.where(i);
    DIST_CHECK(rec.is_object(), where, ": expected a JSON object");
    DIST_CHECK(rec.contains("input_ids"), where, ": missing field 'input_ids'");
    auto ids = read_id_list(rec, "input_ids", where, vocab_size, false);
    DIST_CHECK(!ids.empty(), where, ": 'input_ids' is empty");
    std::vector<int32_t> labels = ids;
    if (rec.contains("labels")) {
      labels = read_id_list(rec, "labels", where, vocab_size, true);
      DIST_CHECK(labels.size() == ids.size(), where, ": 'labels' has ", labels.size(), " entries, 'input_ids' has ",
                 ids.size());
    }
    store.add(ids, labels);
  }
  return store;
}

}  // namespace distillery
