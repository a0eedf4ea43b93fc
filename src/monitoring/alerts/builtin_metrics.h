// The alert metrics Berth computes itself (core/alert_rule.h's
// kAlertMetrics): error_rate, request_rate and latency_p50/p95/p99 over the
// rule's window, from the Metrics counters; in_flight; and drift_psi,
// drift_js, drift_detected from the drift monitor's window.
#pragma once

#include "monitoring/alerts/alert_manager.h"
#include "monitoring/drift/drift_monitor.h"
#include "monitoring/metrics.h"

namespace berth::alerts {

// Gives `manager` a provider for each. `metrics` and `drift` outlive it.
void AddBuiltinMetrics(const Metrics* metrics, drift::DriftMonitor* drift, AlertManager* manager);

}  // namespace berth::alerts
