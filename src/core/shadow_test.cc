#include "core/shadow.h"

#include <gtest/gtest.h>

#include "core/tensor_testing.h"

namespace berth {
namespace {

using testing::MakeTensor;

InferenceResponse Answer(std::vector<int64_t> labels, std::vector<float> probabilities) {
  InferenceResponse r;
  const int64_t n = static_cast<int64_t>(labels.size());
  r.outputs.push_back(MakeTensor<int64_t>("label", DataType::kInt64, {n}, labels));
  r.outputs.push_back(MakeTensor<float>("probabilities", DataType::kFp32, {n, 2}, probabilities));
  return r;
}

TEST(ShadowCompareTest, SameAnswersAgree) {
  const auto c = CompareOutputs(Answer({0, 1}, {0.9f, 0.1f, 0.2f, 0.8f}),
                                Answer({0, 1}, {0.9f, 0.1f, 0.2f, 0.8f}));
  EXPECT_TRUE(c.agree);
  EXPECT_EQ(c.float_elements, 4u);
  EXPECT_DOUBLE_EQ(c.abs_difference_sum, 0.0);
}

TEST(ShadowCompareTest, ALabelThatDiffersDisagreesAndDifferencesAreSummed) {
  const auto c = CompareOutputs(Answer({0, 1}, {0.9f, 0.1f, 0.2f, 0.8f}),
                                Answer({0, 0}, {0.9f, 0.1f, 0.6f, 0.4f}));
  EXPECT_FALSE(c.agree);
  EXPECT_NEAR(c.abs_difference_sum, 0.8, 1e-6);
  EXPECT_EQ(c.float_elements, 4u);
}

TEST(ShadowCompareTest, TinyFloatNoiseAgreesAMissingOutputDoesNot) {
  EXPECT_TRUE(CompareOutputs(Answer({1}, {0.5f, 0.5f}), Answer({1}, {0.500001f, 0.499999f})).agree);
  InferenceResponse partial = Answer({1}, {0.5f, 0.5f});
  partial.outputs.pop_back();
  EXPECT_FALSE(CompareOutputs(Answer({1}, {0.5f, 0.5f}), partial).agree);
}

TEST(ShadowCompareTest, DrawFollowsThePercent) {
  int hits = 0;
  for (int i = 0; i < 10000; ++i) hits += ShadowDraw(20) ? 1 : 0;
  EXPECT_NEAR(hits, 2000, 250);
  EXPECT_FALSE(ShadowDraw(0));
  EXPECT_TRUE(ShadowDraw(100));
}

}  // namespace
}  // namespace berth
