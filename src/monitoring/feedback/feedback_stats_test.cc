#include "monitoring/feedback/feedback_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace berth::feedback {
namespace {

std::map<std::string, double> AsMap(const MetricValues& v) { return {v.begin(), v.end()}; }

std::vector<LabeledPair> Pairs(const std::vector<std::pair<std::string, std::string>>& pt) {
  std::vector<LabeledPair> out;
  for (const auto& [p, t] : pt) out.push_back({p, t, std::nullopt});
  return out;
}

TEST(FeedbackStatsTest, BinaryUsesThePositiveClass) {
  // truth  1 1 1 0 0 0 1 0 ; predicted 1 0 1 0 1 0 1 0: tp 3, fn 1, fp 1, tn 3.
  auto pairs = Pairs({{"1", "1"},
                      {"0", "1"},
                      {"1", "1"},
                      {"0", "0"},
                      {"1", "0"},
                      {"0", "0"},
                      {"1", "1"},
                      {"0", "0"}});
  auto m = AsMap(ClassificationMetrics(pairs, "1"));
  EXPECT_DOUBLE_EQ(m["accuracy"], 6.0 / 8);
  EXPECT_DOUBLE_EQ(m["precision"], 3.0 / 4);
  EXPECT_DOUBLE_EQ(m["recall"], 3.0 / 4);
  EXPECT_DOUBLE_EQ(m["f1"], 6.0 / 8);
  EXPECT_EQ(m.count("roc_auc"), 0u);  // no scores
}

TEST(FeedbackStatsTest, MulticlassIsMacroAveraged) {
  // a: tp 1, fp 1, fn 1; b: tp 1, fp 0, fn 1; c: tp 1, fp 1, fn 0.
  auto pairs = Pairs({{"a", "a"}, {"b", "b"}, {"c", "c"}, {"a", "b"}, {"c", "a"}});
  auto m = AsMap(ClassificationMetrics(pairs, "1"));
  EXPECT_DOUBLE_EQ(m["accuracy"], 3.0 / 5);
  EXPECT_DOUBLE_EQ(m["precision"], (0.5 + 1.0 + 0.5) / 3);
  EXPECT_DOUBLE_EQ(m["recall"], (0.5 + 0.5 + 1.0) / 3);
  EXPECT_DOUBLE_EQ(m["f1"], (2.0 / 4 + 2.0 / 3 + 2.0 / 3) / 3);
}

TEST(FeedbackStatsTest, ZeroDivisionIsZero) {
  auto m = AsMap(ClassificationMetrics(Pairs({{"0", "0"}, {"0", "0"}}), "1"));
  EXPECT_DOUBLE_EQ(m["accuracy"], 1);
  EXPECT_DOUBLE_EQ(m["precision"], 0);
  EXPECT_DOUBLE_EQ(m["recall"], 0);
  EXPECT_DOUBLE_EQ(m["f1"], 0);
  EXPECT_TRUE(ClassificationMetrics({}, "1").empty());
}

TEST(FeedbackStatsTest, RocAucCountsTiesHalf) {
  // sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
  EXPECT_DOUBLE_EQ(*RocAuc({{0.1, false}, {0.4, false}, {0.35, true}, {0.8, true}}), 0.75);
  // A tie between a positive and a negative: half a pair. (3 + 0.5) / 4.
  EXPECT_DOUBLE_EQ(*RocAuc({{0.1, false}, {0.5, false}, {0.5, true}, {0.8, true}}), 0.875);
  EXPECT_FALSE(RocAuc({{0.1, true}, {0.2, true}}).has_value());
  std::vector<LabeledPair> scored = {
      {"0", "0", 0.1}, {"1", "0", 0.6}, {"0", "1", 0.4}, {"1", "1", 0.9}};
  auto m = AsMap(ClassificationMetrics(scored, "1"));
  EXPECT_DOUBLE_EQ(m["roc_auc"], 0.75);
}

TEST(FeedbackStatsTest, Regression) {
  auto pairs = Pairs({{"1.5", "1"}, {"2", "4"}, {"x", "1"}, {"3", "3"}});
  auto m = AsMap(RegressionMetrics(pairs));
  EXPECT_DOUBLE_EQ(m["mae"], (0.5 + 2 + 0) / 3);
  EXPECT_DOUBLE_EQ(m["rmse"], std::sqrt((0.25 + 4 + 0) / 3));
  EXPECT_TRUE(RegressionMetrics(Pairs({{"nan", "1"}})).empty());
}

TEST(FeedbackStatsTest, DropIsPositiveWhenWorse) {
  EXPECT_DOUBLE_EQ(Drop("accuracy", 0.9, 0.8), 0.9 - 0.8);
  EXPECT_DOUBLE_EQ(Drop("mae", 1.0, 1.5), 0.5);
  EXPECT_LT(Drop("rmse", 2.0, 1.0), 0);
}

TEST(FeedbackStatsTest, NumberText) {
  EXPECT_EQ(NumberText(1.0), "1");
  EXPECT_EQ(NumberText(-0.0), "0");
  EXPECT_EQ(NumberText(-3), "-3");
  EXPECT_EQ(NumberText(0.1), "0.1");
  EXPECT_EQ(std::strtod(NumberText(1.0 / 3).c_str(), nullptr), 1.0 / 3);
  EXPECT_EQ(NumberText(1e300), "1e+300");
}

}  // namespace
}  // namespace berth::feedback
