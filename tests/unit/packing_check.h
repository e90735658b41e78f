// The packed-sequence property every model family must have: two documents packed into one row
// (positions restarting, doc ids separating them) give the hidden states of each run alone.
#pragma once

#include <gtest/gtest.h>

#include "tests/unit/close_check.h"
#include "models/transformer.h"

namespace distillery::testing {

// Run in float64 (see close_rel): the packed row and the separate documents are matmuls of
// different shapes, which fp32 BLAS kernels may sum in different orders. The model is returned to
// float32 afterwards (exactly: its weights were float32).
inline void expect_packed_row_equals_documents_run_separately(CausalLM& m) {
  torch::NoGradGuard g;
  m->to(torch::kFloat64);
  auto a = torch::tensor({{5, 7, 9, 11, 13, 2, 3}}, torch::kInt64);
  auto b = torch::tensor({{21, 22, 23, 24, 25, 26}}, torch::kInt64);
  auto ha = m->forward({a, {}, {}});
  auto hb = m->forward({b, {}, {}});
  auto packed = torch::cat({a, b}, 1);
  auto pos = torch::cat({torch::arange(7), torch::arange(6)}).unsqueeze(0);
  auto doc = torch::cat({torch::zeros(7, torch::kInt64), torch::ones(6, torch::kInt64)}).unsqueeze(0);
  auto hp = m->forward({packed, pos, doc});
  EXPECT_TRUE(close_rel(hp.narrow(1, 0, 7), ha));
  EXPECT_TRUE(close_rel(hp.narrow(1, 7, 6), hb));
  m->to(torch::kFloat32);
}

}  // namespace distillery::testing
