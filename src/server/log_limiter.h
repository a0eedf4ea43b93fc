// LogLimiter: lets a repeating event (a refused connection, a failing
// accept) be logged at most once per interval, with the count of
// occurrences left unlogged since the last line. Not thread-safe: its owner
// serializes the calls (a strand, a mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>

namespace berth {

class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::steady_clock::duration interval) : interval_(interval) {}

  // True if this occurrence is to be logged; `*unlogged` is then how many
  // were not, since the last one that was.
  bool Due(uint64_t* unlogged) {
    const auto now = std::chrono::steady_clock::now();
    if (logged_ && now - logged_at_ < interval_) {
      ++unlogged_;
      return false;
    }
    *unlogged = std::exchange(unlogged_, 0);
    logged_ = true;
    logged_at_ = now;
    return true;
  }

 private:
  const std::chrono::steady_clock::duration interval_;
  bool logged_ = false;
  std::chrono::steady_clock::time_point logged_at_;
  uint64_t unlogged_ = 0;
};

}  // namespace berth
