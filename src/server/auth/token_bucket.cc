#include "server/auth/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace berth::auth {

TokenBucket::TokenBucket(double rate)
    : rate_(rate),
      interval_ns_(std::max<int64_t>(1, static_cast<int64_t>(std::llround(1e9 / rate)))),
      // At least one request's interval, so that a rate under 1/s still
      // lets one request through.
      burst_ns_(std::max<int64_t>(interval_ns_, 1'000'000'000)) {}

TokenBucket::Clock::duration TokenBucket::TryTake(Clock::time_point now) {
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  int64_t tat = tat_ns_.load(std::memory_order_relaxed);
  while (true) {
    const int64_t next = std::max(tat, now_ns) + interval_ns_;
    if (next - now_ns > burst_ns_) return std::chrono::nanoseconds(next - now_ns - burst_ns_);
    if (tat_ns_.compare_exchange_weak(tat, next, std::memory_order_relaxed)) {
      return Clock::duration::zero();
    }
  }
}

}  // namespace berth::auth
