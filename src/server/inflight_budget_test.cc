#include "server/inflight_budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

namespace berth {
namespace {

TEST(InflightBudgetTest, ReservesUpToTheCapacityAndNoFurther) {
  InflightBudget budget(100);
  auto a = budget.TryReserve(60);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->bytes(), 60u);
  EXPECT_FALSE(budget.TryReserve(41).has_value());
  auto b = budget.TryReserve(40);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(budget.reserved(), 100u);
  EXPECT_FALSE(budget.TryReserve(1).has_value());
  EXPECT_TRUE(budget.TryReserve(0).has_value());
}

TEST(InflightBudgetTest, DestroyingOrReleasingReturnsTheBytes) {
  InflightBudget budget(100);
  {
    auto a = budget.TryReserve(70);
    ASSERT_TRUE(a.has_value());
    EXPECT_FALSE(budget.TryReserve(70).has_value());
  }
  EXPECT_EQ(budget.reserved(), 0u);
  auto b = budget.TryReserve(70);
  ASSERT_TRUE(b.has_value());
  b->Release();
  EXPECT_EQ(b->bytes(), 0u);
  EXPECT_EQ(budget.reserved(), 0u);
  b->Release();  // twice is harmless
  EXPECT_EQ(budget.reserved(), 0u);
}

TEST(InflightBudgetTest, GrowingIsAllOrNothing) {
  InflightBudget budget(100);
  auto r = budget.TryReserve(10);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->TryGrow(50));
  EXPECT_EQ(r->bytes(), 60u);
  EXPECT_FALSE(r->TryGrow(41));
  EXPECT_EQ(r->bytes(), 60u);
  EXPECT_EQ(budget.reserved(), 60u);
  r->Release();
  EXPECT_TRUE(r->TryGrow(100));  // a released reservation may grow again
  EXPECT_EQ(budget.reserved(), 100u);
}

TEST(InflightBudgetTest, HugeRequestsDoNotWrapAround) {
  InflightBudget budget(100);
  auto r = budget.TryReserve(50);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(budget.TryReserve(std::numeric_limits<uint64_t>::max()).has_value());
  EXPECT_FALSE(r->TryGrow(std::numeric_limits<uint64_t>::max() - 10));
  EXPECT_EQ(budget.reserved(), 50u);
}

TEST(InflightBudgetTest, AnUnboundReservationHoldsNothingAndCannotGrow) {
  InflightBudget::Reservation r;
  EXPECT_EQ(r.bytes(), 0u);
  EXPECT_FALSE(r.TryGrow(1));
}

TEST(InflightBudgetTest, MovingTransfersOwnership) {
  InflightBudget budget(100);
  auto a = budget.TryReserve(30);
  ASSERT_TRUE(a.has_value());
  InflightBudget::Reservation moved = std::move(*a);
  EXPECT_EQ(moved.bytes(), 30u);
  a.reset();  // the moved-from reservation gives nothing back
  EXPECT_EQ(budget.reserved(), 30u);
  auto b = budget.TryReserve(20);
  ASSERT_TRUE(b.has_value());
  moved = std::move(*b);  // releases the 30 it held, takes the 20
  EXPECT_EQ(budget.reserved(), 20u);
  EXPECT_EQ(moved.bytes(), 20u);
}

// Threads reserving, growing and releasing at once never overshoot the
// capacity, and every byte comes back.
TEST(InflightBudgetTest, ConcurrentReservationsNeverOvershoot) {
  constexpr uint64_t kCapacity = 1000;
  InflightBudget budget(kCapacity);
  std::atomic<bool> overshoot{false};
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        auto r = budget.TryReserve(37 + (i + t) % 200);
        if (!r.has_value()) continue;
        ++granted;
        r->TryGrow((i * 7) % 150);
        if (budget.reserved() > kCapacity) overshoot = true;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(overshoot);
  EXPECT_GT(granted.load(), 0);
  EXPECT_EQ(budget.reserved(), 0u);
}

}  // namespace
}  // namespace berth
