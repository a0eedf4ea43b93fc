// Windows over a model version's cumulative request counters (Metrics::
// Counters): snapshots taken as the alerts are evaluated, so that a rule
// reads the counters' increase over its window, as Prometheus's increase()
// does over scraped samples. Not thread-safe: the alert manager calls it
// from its evaluation thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "monitoring/alerts/alert_state.h"
#include "monitoring/metrics.h"

namespace berth::alerts {

// What the counters gained over a window, and the time that actually
// spans (shorter than the window until the window has filled).
struct CounterIncrease {
  Metrics::Counters delta;
  std::chrono::nanoseconds span{0};
};

// The `q` quantile (0 to 1) of a latency histogram's increase, in
// seconds, interpolated linearly within its bucket as Prometheus's
// histogram_quantile() does (a rank in the +Inf bucket reads as the highest
// finite bound); nullopt when the histogram is empty.
std::optional<double> LatencyQuantile(
    double q, const std::array<uint64_t, Metrics::kLatencyBuckets.size() + 1>& buckets);

class CounterWindows {
 public:
  using Key = std::pair<std::string, int64_t>;  // (model, version)

  // Records `counters`, read at `now`, and returns their increase over
  // `window` ending now: from the newest snapshot at least `window` old, or
  // the oldest kept while none is. Nullopt on a version's first
  // observation (nothing to subtract yet), and after its counters went
  // down (its series was dropped and began again), which starts it over.
  // Snapshots are kept for the longest window asked of the version, at
  // most ~1024 of them; a version not observed for longer than that (it
  // left) is forgotten when another one is first observed.
  std::optional<CounterIncrease> Observe(const Key& key, const Metrics::Counters& counters,
                                         SteadyTime now, std::chrono::milliseconds window);
  size_t size() const { return histories_.size(); }

 private:
  struct Snapshot {
    SteadyTime at;
    Metrics::Counters counters;
  };
  struct History {
    std::deque<Snapshot> snapshots;
    std::chrono::milliseconds longest{0};
  };
  std::map<Key, History> histories_;
};

}  // namespace berth::alerts
