#include "monitoring/alerts/counter_window.h"

#include <gtest/gtest.h>

namespace berth::alerts {
namespace {

using namespace std::chrono_literals;

Metrics::Counters Counts(uint64_t success, uint64_t failure) {
  Metrics::Counters c;
  c.success = success;
  c.failure = failure;
  c.latency[3] = success;  // (0.5 ms, 1 ms]
  return c;
}

TEST(LatencyQuantileTest, InterpolatesWithinTheBucketAsPrometheusDoes) {
  std::array<uint64_t, Metrics::kLatencyBuckets.size() + 1> b{};
  EXPECT_FALSE(LatencyQuantile(0.99, b).has_value());
  b[0] = 50;  // (0, 0.1 ms]
  b[2] = 50;  // (0.25 ms, 0.5 ms]
  // Rank 50 of 100 is the first bucket's top.
  EXPECT_DOUBLE_EQ(*LatencyQuantile(0.5, b), 0.0001);
  // Rank 75: half way into (0.25, 0.5] ms.
  EXPECT_DOUBLE_EQ(*LatencyQuantile(0.75, b), 0.000375);
  // Rank 25: half way into (0, 0.1] ms.
  EXPECT_DOUBLE_EQ(*LatencyQuantile(0.25, b), 0.00005);
  // A rank in +Inf reads as the highest finite bound.
  b.back() = 1000;
  EXPECT_DOUBLE_EQ(*LatencyQuantile(0.99, b), 5.0);
}

TEST(CounterWindowsTest, IncreaseOverTheWindow) {
  CounterWindows w;
  const SteadyTime t0(100s);
  const CounterWindows::Key key("m", 1);
  // The first observation has nothing to subtract.
  EXPECT_FALSE(w.Observe(key, Counts(10, 0), t0, 60s).has_value());
  // Before the window has filled: since the first snapshot.
  auto inc = w.Observe(key, Counts(20, 5), t0 + 30s, 60s);
  ASSERT_TRUE(inc.has_value());
  EXPECT_EQ(inc->delta.success, 10u);
  EXPECT_EQ(inc->delta.failure, 5u);
  EXPECT_EQ(inc->delta.latency[3], 10u);
  EXPECT_EQ(inc->span, 30s);
  inc = w.Observe(key, Counts(30, 5), t0 + 60s, 60s);
  EXPECT_EQ(inc->delta.success, 20u);
  EXPECT_EQ(inc->span, 60s);
  // Once full: from the newest snapshot at least a window old (t0 + 30s).
  inc = w.Observe(key, Counts(30, 5), t0 + 90s, 60s);
  EXPECT_EQ(inc->delta.success, 10u);
  EXPECT_EQ(inc->delta.failure, 0u);
  EXPECT_EQ(inc->span, 60s);
  inc = w.Observe(key, Counts(30, 5), t0 + 200s, 60s);
  EXPECT_EQ(inc->delta.success, 0u);
  EXPECT_EQ(inc->delta.failure, 0u);
}

TEST(CounterWindowsTest, TwoRulesAtOneInstantReadTheSame) {
  CounterWindows w;
  const SteadyTime t0(100s);
  const CounterWindows::Key key("m", 1);
  w.Observe(key, Counts(0, 0), t0, 60s);
  auto a = w.Observe(key, Counts(4, 1), t0 + 10s, 60s);
  auto b = w.Observe(key, Counts(4, 1), t0 + 10s, 30s);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->delta.failure, 1u);
  EXPECT_EQ(b->delta.failure, 1u);
}

TEST(CounterWindowsTest, CountersGoingDownStartOver) {
  CounterWindows w;
  const SteadyTime t0(100s);
  const CounterWindows::Key key("m", 1);
  w.Observe(key, Counts(50, 5), t0, 60s);
  EXPECT_FALSE(w.Observe(key, Counts(1, 0), t0 + 1s, 60s).has_value());
  auto inc = w.Observe(key, Counts(3, 0), t0 + 2s, 60s);
  ASSERT_TRUE(inc.has_value());
  EXPECT_EQ(inc->delta.success, 2u);
}

TEST(CounterWindowsTest, ForgetsVersionsThatLeft) {
  CounterWindows w;
  const CounterWindows::Key key("m", 1);
  for (int i = 0; i < 5000; ++i) {
    w.Observe(key, Counts(static_cast<uint64_t>(i), 0), SteadyTime(std::chrono::seconds(i)),
              std::chrono::milliseconds(3600'000));
  }
  // A version not seen for longer than its window is dropped when a new
  // one arrives.
  w.Observe({"other", 1}, Counts(0, 0), SteadyTime(std::chrono::hours(10)), 60s);
  EXPECT_EQ(w.size(), 1u);
}

}  // namespace
}  // namespace berth::alerts
