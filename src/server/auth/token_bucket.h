// TokenBucket: a per-key rate limit, lock-free.
//
// The bucket holds up to one second's worth of requests (`rate` tokens) and
// refills at `rate` per second. It is kept as the generic cell rate
// algorithm's one number, the theoretical arrival time (TAT): a request at
// `now` is allowed if TAT - now stays within the burst after adding one
// request's interval, and the new TAT is published with one compare-and-swap.
// Equivalent to a token bucket, with no lock and no refill timer.
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace berth::auth {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // `rate`: requests per second, > 0.
  explicit TokenBucket(double rate);

  // Takes one token at `now`: zero if the request may go ahead, else how long
  // until a token will be there (the request is not counted).
  Clock::duration TryTake(Clock::time_point now);

  double rate() const { return rate_; }

 private:
  const double rate_;
  const int64_t interval_ns_;               // one request's share of a second
  const int64_t burst_ns_;                  // how far TAT may run ahead of now: one second
  std::atomic<int64_t> tat_ns_{INT64_MIN};  // since the clock's epoch
};

}  // namespace berth::auth
