#include "monitoring/drift/drift_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace berth::drift {
namespace {

TEST(DriftStatsTest, BinCountsHaveOpenOuterBins) {
  const std::vector<double> edges = {0, 1, 2, 3};
  const std::vector<double> values = {-5, 0.5, 1, 1.5, 2, 2.5, 3, 10};
  EXPECT_EQ(BinCounts(values, edges), (std::vector<int64_t>{2, 2, 4}));
}

TEST(DriftStatsTest, PsiByHand) {
  // a = (0.2, 0.6, 0.2), e = 1/3 each:
  // 2 * (0.2 - 1/3) ln(0.6) + (0.6 - 1/3) ln(1.8) = 0.29296327697816.
  const std::vector<int64_t> window = {2, 6, 2};
  const std::vector<int64_t> baseline = {5, 5, 5};
  EXPECT_NEAR(Psi(window, baseline), 0.2929632769781625, 1e-12);
  EXPECT_DOUBLE_EQ(Psi(baseline, baseline), 0);
  // An empty window bin is floored at 1e-4, not infinite.
  const std::vector<int64_t> empty_bin = {0, 10, 5};
  const double a0 = 1e-4;
  const double expected = (a0 - 1.0 / 3) * std::log(a0 * 3) +
                          (10.0 / 15 - 1.0 / 3) * std::log(10.0 / 15 * 3) +
                          (5.0 / 15 - 1.0 / 3) * std::log(5.0 / 15 * 3);
  EXPECT_NEAR(Psi(empty_bin, baseline), expected, 1e-12);
}

TEST(DriftStatsTest, QuantileCdfIsLinearBetweenQuantiles) {
  const std::vector<double> q = {0, 0.5, 1};
  EXPECT_DOUBLE_EQ(QuantileCdf(q, -1), 0);
  EXPECT_DOUBLE_EQ(QuantileCdf(q, 0.25), 0.25);
  EXPECT_DOUBLE_EQ(QuantileCdf(q, 0.75), 0.75);
  EXPECT_DOUBLE_EQ(QuantileCdf(q, 2), 1);
  // A repeated quantile is an atom: the function jumps there.
  const std::vector<double> atom = {0, 1, 1, 2};
  EXPECT_DOUBLE_EQ(QuantileCdfLeft(atom, 1), 1.0 / 3);
  EXPECT_DOUBLE_EQ(QuantileCdf(atom, 1), 2.0 / 3);
}

TEST(DriftStatsTest, KsByHand) {
  const std::vector<double> uniform = {0, 1};
  const std::vector<double> half = {0.5};
  EXPECT_DOUBLE_EQ(KsStatistic(half, uniform), 0.5);
  const std::vector<double> low = {0.1, 0.2, 0.3, 0.4};
  EXPECT_NEAR(KsStatistic(low, uniform), 0.6, 1e-12);
  // Against an atom at 1 (F jumps from 1/3 to 2/3) the window {1, 1, 1}
  // differs by 1/3 just below 1 and by 1/3 at 1.
  const std::vector<double> atom = {0, 1, 1, 2};
  const std::vector<double> ones = {1, 1, 1};
  EXPECT_NEAR(KsStatistic(ones, atom), 1.0 / 3, 1e-12);
}

TEST(DriftStatsTest, KsPValueIsKolmogorovsTail) {
  EXPECT_DOUBLE_EQ(KsPValue(0, 100), 1);
  // scipy.stats.kstwobign.sf(0.1 * sqrt(200)) = 0.0366; Stephens's
  // correction moves it a little lower.
  EXPECT_GT(KsPValue(0.1, 200), 0.02);
  EXPECT_LT(KsPValue(0.1, 200), 0.0367);
  EXPECT_LT(KsPValue(0.5, 1000), 1e-10);
  EXPECT_GT(KsPValue(0.01, 10), 0.99);
}

TEST(DriftStatsTest, WassersteinByHand) {
  const std::vector<double> uniform = {0, 1};
  const std::vector<double> half = {0.5};
  EXPECT_NEAR(Wasserstein(half, uniform), 0.25, 1e-12);  // integral of |0.5 - p|
  const std::vector<double> two = {2};
  EXPECT_NEAR(Wasserstein(two, uniform), 1.5, 1e-12);  // integral of 2 - p
  const std::vector<double> ends = {0, 1};
  EXPECT_NEAR(Wasserstein(ends, uniform), 0.25, 1e-12);
  // The same distribution, sampled finely, is close to 0.
  std::vector<double> fine;
  for (int i = 0; i < 1000; ++i) fine.push_back((i + 0.5) / 1000);
  EXPECT_NEAR(Wasserstein(fine, uniform), 0.00025, 1e-9);
}

TEST(DriftStatsTest, JsDistanceIsScipys) {
  const std::vector<double> a = {1, 0};
  const std::vector<double> b = {0, 1};
  EXPECT_NEAR(JsDistance(a, b), std::sqrt(std::log(2.0)), 1e-12);
  // scipy.spatial.distance.jensenshannon([3, 1], [1, 1]).
  const std::vector<double> c = {3, 1};
  const std::vector<double> d = {1, 1};
  EXPECT_NEAR(JsDistance(c, d), 0.18390779094047432, 1e-12);
  EXPECT_DOUBLE_EQ(JsDistance(c, c), 0);
}

TEST(DriftStatsTest, ChiSquareIsScipys) {
  // scipy.stats.chisquare([30, 10], [20, 20]): 10.0, p = 0.001565402258002549.
  const std::vector<double> observed = {30, 10};
  const std::vector<double> baseline = {5, 5};
  auto [chi2, p] = ChiSquare(observed, baseline);
  EXPECT_NEAR(chi2, 10.0, 1e-12);
  EXPECT_NEAR(p, 0.001565402258002549, 1e-12);
  // scipy.stats.chi2.sf(4, 2) = exp(-2); chi2.sf(10.5, 3) = 0.014760897143990665.
  EXPECT_NEAR(GammaQ(1, 2), std::exp(-2.0), 1e-12);
  EXPECT_NEAR(GammaQ(1.5, 5.25), 0.014760897143990665, 1e-12);
  EXPECT_NEAR(GammaQ(10, 3), 0.9988975118698845, 1e-10);
}

}  // namespace
}  // namespace berth::drift
