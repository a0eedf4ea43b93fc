#include "monitoring/alerts/builtin_metrics.h"

#include <algorithm>
#include <memory>

#include "monitoring/alerts/counter_window.h"

namespace berth::alerts {
namespace {

// The figure `metric` names of one feature's report; nullopt while it is
// too small to be compared.
std::optional<double> FeatureFigure(const std::string& metric, const drift::FeatureReport& f) {
  if (f.status != "ok") return std::nullopt;
  if (metric == "drift_detected") return f.drift ? 1.0 : 0.0;
  if (metric == "drift_psi") {
    if (f.kind != drift::FeatureKind::kNumeric) return std::nullopt;
    return f.psi;
  }
  if (f.kind != drift::FeatureKind::kCategorical) return std::nullopt;
  return f.js;
}

// The rule's feature's figure, or the largest over every feature and the
// prediction; nullopt when the window has no baseline or is too small.
std::optional<double> DriftFigure(drift::DriftMonitor* monitor, const MetricQuery& q) {
  const drift::DriftReport report = monitor->Report(q.version);
  if (report.status != "ok") return std::nullopt;
  std::optional<double> out;
  auto consider = [&](const drift::FeatureReport& f) {
    if (!q.rule.feature.empty() && f.name != q.rule.feature) return;
    const std::optional<double> v = FeatureFigure(q.rule.metric, f);
    if (v) out = out ? std::max(*out, *v) : *v;
  };
  for (const drift::FeatureReport& f : report.features) consider(f);
  if (report.prediction) consider(*report.prediction);
  return out;
}

}  // namespace

void AddBuiltinMetrics(const Metrics* metrics, drift::DriftMonitor* drift,
                       AlertManager* manager) {
  // Used on the evaluation thread only (AlertManager serialises Evaluate).
  auto windows = std::make_shared<CounterWindows>();
  auto increase = [metrics, windows](const MetricQuery& q) {
    const std::string version = std::to_string(q.version.version);
    return windows->Observe({q.version.name, q.version.version},
                            metrics->CountersOf(q.version.name, version), q.now.steady,
                            q.rule.window);
  };
  manager->SetMetric("error_rate", [increase](const MetricQuery& q) -> std::optional<double> {
    const std::optional<CounterIncrease> inc = increase(q);
    if (!inc) return std::nullopt;
    const uint64_t all = inc->delta.success + inc->delta.failure;
    if (all == 0) return std::nullopt;
    return static_cast<double>(inc->delta.failure) / static_cast<double>(all);
  });
  manager->SetMetric("request_rate", [increase](const MetricQuery& q) -> std::optional<double> {
    const std::optional<CounterIncrease> inc = increase(q);
    if (!inc || inc->span.count() <= 0) return std::nullopt;
    return static_cast<double>(inc->delta.success + inc->delta.failure) /
           std::chrono::duration<double>(inc->span).count();
  });
  for (const auto& [name, quantile] :
       {std::pair{"latency_p50", 0.5}, std::pair{"latency_p95", 0.95},
        std::pair{"latency_p99", 0.99}}) {
    manager->SetMetric(name, [increase, quantile](const MetricQuery& q) -> std::optional<double> {
      const std::optional<CounterIncrease> inc = increase(q);
      if (!inc) return std::nullopt;
      return LatencyQuantile(quantile, inc->delta.latency);
    });
  }
  manager->SetMetric("in_flight", [](const MetricQuery& q) -> std::optional<double> {
    return static_cast<double>(q.version.in_flight.load(std::memory_order_relaxed));
  });
  for (const char* name : {"drift_psi", "drift_js", "drift_detected"}) {
    manager->SetMetric(name, [drift](const MetricQuery& q) { return DriftFigure(drift, q); });
  }
}

}  // namespace berth::alerts
