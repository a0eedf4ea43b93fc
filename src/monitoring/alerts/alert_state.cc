#include "monitoring/alerts/alert_state.h"

namespace berth::alerts {

std::string_view AlertPhaseName(AlertPhase phase) {
  switch (phase) {
    case AlertPhase::kInactive: return "inactive";
    case AlertPhase::kPending: return "pending";
    case AlertPhase::kFiring: return "firing";
  }
  return "inactive";
}

AlertTransition AlertState::Step(std::optional<double> value, bool holds, Instant now,
                                 std::chrono::milliseconds for_duration) {
  evaluated_ = true;
  value_ = value;
  if (!value || !holds) {
    const bool was_firing = phase_ == AlertPhase::kFiring;
    phase_ = AlertPhase::kInactive;
    if (!was_firing) return AlertTransition::kNone;
    resolved_at_ = now.wall;
    return AlertTransition::kResolved;
  }
  if (phase_ == AlertPhase::kInactive) {
    phase_ = AlertPhase::kPending;
    active_since_ = now.steady;
    active_since_wall_ = now.wall;
  }
  // `for: 0` fires on the first evaluation that holds, as in Prometheus.
  if (phase_ == AlertPhase::kPending && now.steady - active_since_ >= for_duration) {
    phase_ = AlertPhase::kFiring;
    return AlertTransition::kFired;
  }
  return AlertTransition::kNone;
}

AlertTransition AlertState::Retire(Instant now) {
  return Step(std::nullopt, false, now, std::chrono::milliseconds(0));
}

}  // namespace berth::alerts
