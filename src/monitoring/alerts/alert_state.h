// The state of one alert instance (a rule applied to one model version):
// inactive -> pending (the condition holds) -> firing (it held for the
// rule's `for`) -> resolved (it stopped holding, or the metric has no data)
// -> inactive. A pure state machine: the caller passes the time, so tests
// drive it with a clock of their own. Not thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace berth::alerts {

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// A moment on both clocks: steady for durations, wall for what is shown.
struct Instant {
  SteadyTime steady;
  WallTime wall;
  static Instant Now() { return {std::chrono::steady_clock::now(), std::chrono::system_clock::now()}; }
};

enum class AlertPhase { kInactive, kPending, kFiring };
std::string_view AlertPhaseName(AlertPhase phase);  // inactive, pending, firing

// What one evaluation changed that is worth telling.
enum class AlertTransition { kNone, kFired, kResolved };

class AlertState {
 public:
  // One evaluation at `now`: `value` is the metric (nullopt: no data, which
  // never holds a condition) and `holds` whether it meets the rule.
  AlertTransition Step(std::optional<double> value, bool holds, Instant now,
                       std::chrono::milliseconds for_duration);
  // The instance is going away (its version left): a firing alert resolves.
  AlertTransition Retire(Instant now);

  AlertPhase phase() const { return phase_; }
  std::optional<double> value() const { return value_; }
  // When the condition started to hold (pending and firing); Prometheus's
  // activeAt and Alertmanager's startsAt.
  WallTime active_since() const { return active_since_wall_; }
  // When it last resolved; the resolved notification's endsAt.
  WallTime resolved_at() const { return resolved_at_; }
  bool evaluated() const { return evaluated_; }

 private:
  AlertPhase phase_ = AlertPhase::kInactive;
  std::optional<double> value_;
  SteadyTime active_since_{};
  WallTime active_since_wall_{};
  WallTime resolved_at_{};
  bool evaluated_ = false;
};

}  // namespace berth::alerts
