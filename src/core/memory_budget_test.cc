#include "core/memory_budget.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace berth {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = 1 << 20;

TEST(MemoryBudgetTest, EstimatesUntilMeasured) {
  MemoryBudget budget(0, 2.5);
  EXPECT_EQ(budget.Need("m/1:100", 100), 250u);
  budget.RecordMeasured("m/1:100", 100, 1000, nullptr);
  EXPECT_EQ(budget.Need("m/1:100", 100), 1000u);
  // Never below the artifact: a load that reused freed memory measures ~0.
  budget.RecordMeasured("m/2:100", 100, 3, nullptr);
  EXPECT_EQ(budget.Need("m/2:100", 100), 100u);
  // The largest measurement is kept.
  budget.RecordMeasured("m/1:100", 100, 10, nullptr);
  EXPECT_EQ(budget.Need("m/1:100", 100), 1000u);
}

TEST(MemoryBudgetTest, ReservesAndReleases) {
  MemoryBudget budget(10 * kMiB, 2);
  auto a = budget.Reserve("a", "version 1 of model 'a'", 2 * kMiB);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->bytes(), 4 * kMiB);
  EXPECT_EQ(budget.reserved(), 4 * kMiB);
  auto b = budget.Reserve("b", "version 1 of model 'b'", 3 * kMiB);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(budget.reserved(), 10 * kMiB);
  a->reset();
  EXPECT_EQ(budget.reserved(), 6 * kMiB);
  b->reset();
  EXPECT_EQ(budget.reserved(), 0u);
}

TEST(MemoryBudgetTest, RefusesWhatDoesNotFitNamingNeedAndFree) {
  MemoryBudget budget(10 * kMiB, 2);
  auto held = budget.Reserve("a", "version 1 of model 'a'", 3 * kMiB);
  ASSERT_TRUE(held.ok());
  auto refused = budget.Reserve("b", "version 7 of model 'b'", 3 * kMiB);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(refused.status().message(),
            "version 7 of model 'b' needs 6.0 MiB (estimated: its 3.0 MiB artifact x 2) but only "
            "4.0 MiB of the 10.0 MiB memory budget is free (6.0 MiB held by 1 loaded version); "
            "it was not loaded");
  EXPECT_EQ(budget.reserved(), 6 * kMiB);  // a refusal holds nothing

  budget.RecordMeasured("b", 3 * kMiB, 5 * kMiB, nullptr);
  refused = budget.Reserve("b", "version 7 of model 'b'", 3 * kMiB);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              HasSubstr("needs 5.0 MiB (measured when it last loaded)"));
}

TEST(MemoryBudgetTest, NoLimitStillAccounts) {
  MemoryBudget budget;
  auto r = budget.Reserve("a", "a", 1ull << 40);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(budget.reserved(), 2ull << 40);
  budget.RecordMeasured("a", 1ull << 40, 1, r->get());
  EXPECT_EQ((*r)->bytes(), 1ull << 40);
  EXPECT_EQ(budget.reserved(), 1ull << 40);
}

TEST(MemoryBudgetTest, AMeasurementResizesTheReservation) {
  MemoryBudget budget(100 * kMiB, 2);
  auto r = budget.Reserve("a", "a", 10 * kMiB);
  ASSERT_TRUE(r.ok());
  budget.RecordMeasured("a", 10 * kMiB, 35 * kMiB, r->get());
  EXPECT_EQ((*r)->bytes(), 35 * kMiB);
  EXPECT_EQ(budget.reserved(), 35 * kMiB);
}

TEST(MemoryBudgetTest, AReservationMayOutliveItsBudget) {
  std::unique_ptr<MemoryBudget::Reservation> kept;
  {
    MemoryBudget budget(kMiB, 1);
    auto r = budget.Reserve("a", "a", 10);
    ASSERT_TRUE(r.ok());
    kept = std::move(r).value();
  }
  EXPECT_EQ(kept->bytes(), 10u);
  kept.reset();  // must not touch freed memory (ASan)
}

// Reservations taken and returned from many threads at once never let the
// total exceed the budget, and all of it comes back.
TEST(MemoryBudgetTest, ConcurrentReservationsStayWithinTheBudget) {
  MemoryBudget budget(64, 1);
  std::vector<std::thread> threads;
  std::atomic<bool> over{false};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&budget, &over, t] {
      for (int i = 0; i < 2000; ++i) {
        auto r = budget.Reserve("k" + std::to_string(t), "x", 8 + (i % 3));
        if (budget.reserved() > 64) over = true;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(over);
  EXPECT_EQ(budget.reserved(), 0u);
}

TEST(ResidentBytesTest, ReadsThisProcess) {
  const uint64_t rss = ResidentBytes();
  EXPECT_GT(rss, 1u << 20);
  EXPECT_LT(rss, 1ull << 40);
}

}  // namespace
}  // namespace berth
