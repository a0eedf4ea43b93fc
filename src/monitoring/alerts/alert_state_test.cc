#include "monitoring/alerts/alert_state.h"

#include <gtest/gtest.h>

namespace berth::alerts {
namespace {

using namespace std::chrono_literals;

// A clock the test moves by hand.
struct FakeClock {
  Instant now{SteadyTime(1000s), WallTime(1'764'600'000s)};
  Instant Advance(std::chrono::milliseconds d) {
    now.steady += d;
    now.wall += d;
    return now;
  }
};

TEST(AlertStateTest, PendingThenFiringAfterForThenResolved) {
  FakeClock clock;
  AlertState s;
  EXPECT_EQ(s.Step(0.5, true, clock.now, 30s), AlertTransition::kNone);
  EXPECT_EQ(s.phase(), AlertPhase::kPending);
  const WallTime active = clock.now.wall;
  EXPECT_EQ(s.Step(0.5, true, clock.Advance(29s), 30s), AlertTransition::kNone);
  EXPECT_EQ(s.phase(), AlertPhase::kPending);
  EXPECT_EQ(s.Step(0.6, true, clock.Advance(1s), 30s), AlertTransition::kFired);
  EXPECT_EQ(s.phase(), AlertPhase::kFiring);
  EXPECT_EQ(s.active_since(), active);
  EXPECT_EQ(*s.value(), 0.6);
  // Fired once: holding on says nothing more.
  EXPECT_EQ(s.Step(0.7, true, clock.Advance(10s), 30s), AlertTransition::kNone);
  EXPECT_EQ(s.Step(0.001, false, clock.Advance(10s), 30s), AlertTransition::kResolved);
  EXPECT_EQ(s.phase(), AlertPhase::kInactive);
  EXPECT_EQ(s.resolved_at(), clock.now.wall);
  EXPECT_EQ(s.Step(0.001, false, clock.Advance(10s), 30s), AlertTransition::kNone);
}

TEST(AlertStateTest, PendingThatStopsHoldingNeverFires) {
  FakeClock clock;
  AlertState s;
  EXPECT_EQ(s.Step(1, true, clock.now, 1min), AlertTransition::kNone);
  EXPECT_EQ(s.Step(0, false, clock.Advance(30s), 1min), AlertTransition::kNone);
  EXPECT_EQ(s.phase(), AlertPhase::kInactive);
  // Holding again starts the `for` over.
  EXPECT_EQ(s.Step(1, true, clock.Advance(30s), 1min), AlertTransition::kNone);
  EXPECT_EQ(s.Step(1, true, clock.Advance(59s), 1min), AlertTransition::kNone);
  EXPECT_EQ(s.Step(1, true, clock.Advance(1s), 1min), AlertTransition::kFired);
}

TEST(AlertStateTest, ForZeroFiresAtOnce) {
  FakeClock clock;
  AlertState s;
  EXPECT_EQ(s.Step(3, true, clock.now, 0ms), AlertTransition::kFired);
}

TEST(AlertStateTest, NoDataResolvesAndNeverFires) {
  FakeClock clock;
  AlertState s;
  EXPECT_EQ(s.Step(std::nullopt, true, clock.now, 0ms), AlertTransition::kNone);
  EXPECT_EQ(s.phase(), AlertPhase::kInactive);
  EXPECT_EQ(s.Step(1, true, clock.Advance(1s), 0ms), AlertTransition::kFired);
  EXPECT_EQ(s.Step(std::nullopt, false, clock.Advance(1s), 0ms), AlertTransition::kResolved);
  EXPECT_FALSE(s.value().has_value());
}

TEST(AlertStateTest, RetireResolvesOnlyAFiringAlert) {
  FakeClock clock;
  AlertState pending;
  pending.Step(1, true, clock.now, 1h);
  EXPECT_EQ(pending.Retire(clock.Advance(1s)), AlertTransition::kNone);
  AlertState firing;
  firing.Step(1, true, clock.now, 0ms);
  EXPECT_EQ(firing.Retire(clock.Advance(1s)), AlertTransition::kResolved);
}

}  // namespace
}  // namespace berth::alerts
