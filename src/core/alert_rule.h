// One alert rule: a metric of a model version compared with a threshold,
// over a window, for a while. Rules come from the server's alerts file
// (--alerts) or a model's config.yaml (`alerts:`), both parsed by
// registry/config_parser.h; monitoring/alerts/alert_manager.h evaluates
// them. See docs/monitoring.md#alerts.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace berth {

enum class AlertComparison { kGreater, kGreaterOrEqual, kLess, kLessOrEqual };

// ">", ">=", "<", "<=".
std::string_view AlertComparisonName(AlertComparison op);

inline bool AlertCompare(AlertComparison op, double value, double threshold) {
  switch (op) {
    case AlertComparison::kGreater: return value > threshold;
    case AlertComparison::kGreaterOrEqual: return value >= threshold;
    case AlertComparison::kLess: return value < threshold;
    case AlertComparison::kLessOrEqual: return value <= threshold;
  }
  return false;
}

// The metrics a rule may name. A windowed metric is computed over the
// rule's `window` (which it requires); an instant one is read as it is now
// (and refuses a window). A new metric is added here and given a provider
// (AlertManager::SetMetric) in the same change.
struct AlertMetric {
  std::string_view name;
  bool windowed;
  // Takes a `feature` (the drift metrics: one feature's figure instead of
  // the largest).
  bool takes_feature;
};
inline constexpr AlertMetric kAlertMetrics[] = {
    {"error_rate", true, false},    // failed / all requests, 0 to 1
    {"request_rate", true, false},  // requests per second
    {"latency_p50", true, false},   // seconds, successful requests
    {"latency_p95", true, false},
    {"latency_p99", true, false},
    {"in_flight", false, false},    // requests resolved and not yet answered
    {"drift_psi", false, true},     // the largest PSI of the drift window's features
    {"drift_js", false, true},      // the largest Jensen-Shannon distance
    {"drift_detected", false, true},  // 1 if any feature drifted, else 0
    // Live accuracy from ground truth (monitoring/feedback/): the registered
    // value less the live one, as a fraction (0.05: five points worse).
    {"accuracy_drop", false, false},
    {"f1_drop", false, false},
    // Regression: the live error less the registered one, in the target's unit.
    {"mae_rise", false, false},
    {"rmse_rise", false, false},
};

// Null if `name` is not a metric of kAlertMetrics.
const AlertMetric* FindAlertMetric(std::string_view name);

struct AlertRule {
  // The alert's name (Prometheus's `alert:`): the `alert` label.
  std::string name;
  std::string metric;
  AlertComparison op = AlertComparison::kGreater;
  double threshold = 0;
  // Windowed metrics: the span they are computed over (> 0).
  std::chrono::milliseconds window{0};
  // How long the condition must hold before the alert fires (0: at once).
  std::chrono::milliseconds for_duration{0};
  // The server's file: the model the rule watches, empty for every model.
  // A model's config: always empty (the model is the config's).
  std::string model;
  // Drift metrics: the feature (or prediction) whose figure is read; empty
  // for the largest over all of them.
  std::string feature;
  // Added to the webhook's labels (e.g. severity: page).
  std::map<std::string, std::string> labels;
  // A sentence for people (the webhook's `summary` annotation).
  std::string summary;

  bool operator==(const AlertRule&) const = default;
};

// Where alerts go besides the log and /metrics: the alerts file's `webhook:`.
struct AlertWebhookConfig {
  std::string url;  // http[s]://HOST[:PORT][/PATH]; empty: no webhook
  std::chrono::milliseconds timeout{2000};  // per attempt
  int retries = 3;  // attempts after the first, with doubling back-off from 500 ms
  // The CAs (a PEM file) an https:// receiver's certificate must chain to;
  // empty: the system's.
  std::string ca_file;

  bool operator==(const AlertWebhookConfig&) const = default;
};

// The server's alerts file (--alerts).
struct AlertsFile {
  AlertWebhookConfig webhook;
  std::vector<AlertRule> rules;
};

}  // namespace berth
