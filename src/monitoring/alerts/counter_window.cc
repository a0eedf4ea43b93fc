#include "monitoring/alerts/counter_window.h"

#include <algorithm>

namespace berth::alerts {

std::optional<double> LatencyQuantile(
    double q, const std::array<uint64_t, Metrics::kLatencyBuckets.size() + 1>& buckets) {
  uint64_t total = 0;
  for (uint64_t n : buckets) total += n;
  if (total == 0) return std::nullopt;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  uint64_t below = 0;
  for (size_t b = 0; b < Metrics::kLatencyBuckets.size(); ++b) {
    const uint64_t upto = below + buckets[b];
    if (static_cast<double>(upto) >= rank && buckets[b] > 0) {
      const double lower = b == 0 ? 0.0 : Metrics::kLatencyBuckets[b - 1];
      const double upper = Metrics::kLatencyBuckets[b];
      return lower + (upper - lower) * (rank - static_cast<double>(below)) /
                         static_cast<double>(buckets[b]);
    }
    below = upto;
  }
  return Metrics::kLatencyBuckets.back();
}

namespace {

bool WentDown(const Metrics::Counters& later, const Metrics::Counters& earlier) {
  if (later.success < earlier.success || later.failure < earlier.failure) return true;
  for (size_t b = 0; b < later.latency.size(); ++b) {
    if (later.latency[b] < earlier.latency[b]) return true;
  }
  return false;
}

Metrics::Counters Minus(const Metrics::Counters& a, const Metrics::Counters& b) {
  Metrics::Counters out;
  out.success = a.success - b.success;
  out.failure = a.failure - b.failure;
  for (size_t i = 0; i < out.latency.size(); ++i) out.latency[i] = a.latency[i] - b.latency[i];
  return out;
}

}  // namespace

std::optional<CounterIncrease> CounterWindows::Observe(const Key& key,
                                                       const Metrics::Counters& counters,
                                                       SteadyTime now,
                                                       std::chrono::milliseconds window) {
  if (histories_.count(key) == 0) {
    for (auto it = histories_.begin(); it != histories_.end();) {
      const bool stale = it->second.snapshots.empty() ||
                         now - it->second.snapshots.back().at >
                             it->second.longest + std::chrono::minutes(1);
      it = stale ? histories_.erase(it) : std::next(it);
    }
  }
  History& h = histories_[key];
  h.longest = std::max(h.longest, window);
  if (!h.snapshots.empty() && WentDown(counters, h.snapshots.back().counters)) {
    h.snapshots.clear();
  }
  std::optional<CounterIncrease> out;
  if (!h.snapshots.empty()) {
    // The newest snapshot at or before the window's start, else the oldest.
    const SteadyTime start = now - window;
    const Snapshot* base = &h.snapshots.front();
    for (const Snapshot& s : h.snapshots) {
      if (s.at > start) break;
      base = &s;
    }
    if (base->at < now) {
      out = CounterIncrease{Minus(counters, base->counters), now - base->at};
    }
  }
  // Bounded memory: one snapshot per 1/1024 of the longest window.
  const auto spacing = h.longest / 1024;
  if (h.snapshots.empty() || now - h.snapshots.back().at > spacing) {
    h.snapshots.push_back({now, counters});
  }
  // Keep the newest snapshot at or before the longest window's start.
  const SteadyTime keep_from = now - h.longest;
  while (h.snapshots.size() > 1 && h.snapshots[1].at <= keep_from) h.snapshots.pop_front();
  return out;
}

}  // namespace berth::alerts
