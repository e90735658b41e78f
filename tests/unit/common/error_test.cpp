#include <gtest/gtest.h>

#include "common/error.h"

TEST(DistCheck, ThrowsUserErrorWithConcatenatedMessage) {
  try {
    DIST_CHECK(1 + 1 == 3, "data.jsonl:", 7, ": expected 'labels'");
    FAIL() << "DIST_CHECK did not throw";
  } catch (const distillery::UserError& e) {
    EXPECT_STREQ(e.what(), "data.jsonl:7: expected 'labels'");
  }
}

TEST(DistAssert, NamesFileAndLine) {
  try {
    DIST_ASSERT(false, "x=", 3);
    FAIL();
  } catch (const distillery::InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("error_test.cpp:"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("x=3"), std::string::npos);
  }
}
