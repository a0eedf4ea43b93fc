#include "server/auth/token_bucket.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace berth::auth {
namespace {

using std::chrono::milliseconds;
using Clock = TokenBucket::Clock;

TEST(TokenBucketTest, BurstOfOneSecondThenRefillAtTheRate) {
  TokenBucket bucket(5);
  const Clock::time_point t0{std::chrono::hours(1)};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(bucket.TryTake(t0), Clock::duration::zero()) << i;
  const auto wait = bucket.TryTake(t0);
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(wait).count(), 200);
  // A refused request takes nothing: the wait does not grow.
  EXPECT_EQ(bucket.TryTake(t0), wait);
  EXPECT_EQ(bucket.TryTake(t0 + milliseconds(199)) > Clock::duration::zero(), true);
  EXPECT_EQ(bucket.TryTake(t0 + milliseconds(200)), Clock::duration::zero());
  EXPECT_GT(bucket.TryTake(t0 + milliseconds(200)), Clock::duration::zero());
  // A long pause refills the bucket to its burst, not beyond.
  const auto later = t0 + std::chrono::seconds(60);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(bucket.TryTake(later), Clock::duration::zero()) << i;
  EXPECT_GT(bucket.TryTake(later), Clock::duration::zero());
}

TEST(TokenBucketTest, RateBelowOnePerSecondStillAllowsOne) {
  TokenBucket bucket(0.5);
  const Clock::time_point t0{std::chrono::hours(1)};
  EXPECT_EQ(bucket.TryTake(t0), Clock::duration::zero());
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(bucket.TryTake(t0)).count(), 2000);
}

// Many threads at one instant: exactly the burst gets through, whatever the
// interleaving of the compare-and-swaps.
TEST(TokenBucketTest, ConcurrentTakersGetExactlyTheBurst) {
  for (int round = 0; round < 20; ++round) {
    TokenBucket bucket(100);
    const Clock::time_point t0{std::chrono::hours(1)};
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 50; ++i) {
          if (bucket.TryTake(t0) == Clock::duration::zero()) allowed.fetch_add(1);
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(allowed.load(), 100);
  }
}

}  // namespace
}  // namespace berth::auth
