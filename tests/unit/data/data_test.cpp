#include <gtest/gtest.h>

#include "data/example_store.h"
#include "data/packing.h"
#include "data/synthetic.h"
#include "tests/unit/test_util.h"
#include "common/error.h"
#include "common/fs_util.h"

using namespace distillery;
using distillery::testing::TempDir;

namespace {
std::string error_loading(const std::string& text) {
  TempDir dir;
  write_text_file(dir / "d.jsonl", text);
  try {
    load_tokenized_jsonl(dir / "d.jsonl", 100);
  } catch (const UserError& e) {
    std::string msg = e.what();
    return msg.substr(msg.find("d.jsonl"));
  }
  return "";
}
}  // namespace

TEST(TokenizedJsonl, ErrorsNameFileLineAndField) {
  EXPECT_EQ(error_loading("{\"input_ids\": [1, 2]}\n\n{\"input_ids\": [1, 2\n").rfind("d.jsonl:3: malformed JSON", 0), 0u);
  EXPECT_EQ(error_loading("{\"labels\": [1]}\n"), "d.jsonl:1: missing field 'input_ids'");
  EXPECT_EQ(error_loading("{\"input_ids\": [1, 200]}\n"),
            "d.jsonl:1: input_ids[1]=200 is outside the model's vocabulary [0, 100)");
  EXPECT_EQ(error_loading("{\"input_ids\": [1, 2], \"labels\": [1]}\n"),
            "d.jsonl:1: 'labels' has 1 entries, 'input_ids' has 2");
  EXPECT_EQ(error_loading("{\"input_ids\": [1, \"x\"]}\n"), "d.jsonl:1: input_ids[1] is not an integer");
}

TEST(Packing, FillsRowsGreedilyAndTruncatesOrDrops) {
  ExampleStore s;
  s.add({1, 2, 3}, {1, 2, 3});
  s.add({4, 5, 6, 7, 8, 9}, {4, 5, 6, 7, 8, 9});
  s.add({10, 11}, {10, 11});
  PackStats st;
  auto rows = pack_rows(s, {0, 1, 2}, 5, "right", true, &st);
  ASSERT_EQ(rows.size(), 3u);  // [3] | [5 of 6] | [2]
  EXPECT_EQ(rows[1][0].length, 5);
  EXPECT_EQ(st.truncated, 1);
  PackStats st2;
  auto dropped = pack_rows(s, {0, 1, 2}, 5, "drop", true, &st2);
  ASSERT_EQ(dropped.size(), 1u);  // [3, 2]
  EXPECT_EQ(dropped[0].size(), 2u);
  EXPECT_EQ(st2.dropped, 1);
  auto unpacked = pack_rows(s, {0, 2}, 5, "right", false, nullptr);
  EXPECT_EQ(unpacked.size(), 2u);  // would fit in one row, but packing is off
}

TEST(Packing, MicroBatchShiftsTargetsWithinDocumentsAndRestartsPositions) {
  ExampleStore s;
  s.add({1, 2, 3}, {-100, 2, 3});
  s.add({4, 5}, {4, 5});
  auto mb = make_packed_batch(s, {{{0, 3}, {1, 2}}}, 6);
  EXPECT_TRUE(torch::equal(mb.input_ids[0], torch::tensor({1, 2, 3, 4, 5, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(mb.targets[0], torch::tensor({2, 3, -100, 5, -100, -100}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(mb.position_ids[0], torch::tensor({0, 1, 2, 0, 1, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(mb.doc_ids[0], torch::tensor({0, 0, 0, 1, 1, -1}, torch::kInt64)));
  EXPECT_EQ(mb.num_targets, 3);
  EXPECT_EQ(mb.num_tokens, 5);
  EXPECT_EQ(count_targets(s, {{0, 3}, {1, 2}}), 3);
}

TEST(RowStream, IsSeededCrossesEpochsAndSeeksExactly) {
  ExampleStore s;
  for (int i = 0; i < 20; ++i) s.add({i + 1, i + 2}, {i + 1, i + 2});
  RowStream a(s, 4, "right", true, true, 7), b(s, 4, "right", true, true, 7);
  auto ra = a.take(25);  // 10 rows per epoch -> into epoch 2
  EXPECT_EQ(a.epoch(), 2);
  auto rb = b.take(25);
  for (size_t i = 0; i < ra.size(); ++i) EXPECT_EQ(ra[i][0].example, rb[i][0].example);
  EXPECT_NE(ra[0][0].example * 100 + ra[0][1].example, ra[10][0].example * 100 + ra[10][1].example);
  RowStream c(s, 4, "right", true, true, 7);
  c.seek(1, 3);
  auto rc = c.take(2);
  EXPECT_EQ(rc[0][0].example, ra[13][0].example);
  EXPECT_EQ(rc[1][1].example, ra[14][1].example);
}

TEST(SyntheticTasks, AnswersVerify) {
  auto ar = make_task("arithmetic", 50, 3, 1);
  for (const auto& r : ar) EXPECT_TRUE(verify_task_answer("arithmetic", r, r.completion + "\n")) << r.prompt;
  EXPECT_FALSE(verify_task_answer("arithmetic", ar[0], "x"));
  auto cd = make_task("countdown", 50, 3, 1);
  for (const auto& r : cd) EXPECT_TRUE(verify_task_answer("countdown", r, r.completion)) << r.prompt << r.completion;
  EXPECT_FALSE(verify_task_answer("countdown", cd[0], "1+1"));
  EXPECT_EQ(make_task("arithmetic", 3, 2, 5)[2].prompt, make_task("arithmetic", 3, 2, 5)[2].prompt);
}
