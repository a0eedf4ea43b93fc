// AlertManager: evaluates alert rules (core/alert_rule.h) against every
// READY model version, on the thread that calls Evaluate (the server's
// alert thread, never a request's), and tells of each alert that fires or
// resolves, once: a log line, the berth_alert_* series and the notifier
// (the webhook). GET /v2/alerts reads its rules and instances.
//
// Metrics are named providers (SetMetric): the built-in ones are
// builtin_metrics.h's; another module plugs its own in the same way (e.g.
// "accuracy_drop" from live accuracy: add it to kAlertMetrics, then
// SetMetric("accuracy_drop", ...) before the first Evaluate).
//
// Rules: the server's alerts file, for one model or all; and each model's
// config.yaml `alerts:`, for that model's versions, replacing a file rule
// of the same name. Thread-safe: Evaluate runs on one thread at a time
// (serialised by eval_mu_); the views and RenderPrometheus may be read
// from any thread meanwhile.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/alert_rule.h"
#include "core/model.h"
#include "core/model_manager.h"
#include "core/status.h"
#include "core/thread_annotations.h"
#include "monitoring/alerts/alert_state.h"

namespace berth::alerts {

// What a provider is asked: one metric of one READY version, now.
struct MetricQuery {
  const Model& version;
  const AlertRule& rule;  // its window and feature
  Instant now;
};
// The metric's value, or nullopt when it has none (no request in the
// window, a drift window too small or without a baseline): a rule without
// a value does not hold, and a firing alert resolves.
using MetricProvider = std::function<std::optional<double>(const MetricQuery&)>;

// An alert that fired or resolved.
struct AlertEvent {
  bool firing = true;  // false: resolved
  AlertRule rule;
  std::string model;
  std::string version;
  std::optional<double> value;  // the metric when it fired or resolved; none without data
  WallTime starts_at;           // when the condition began to hold
  WallTime ends_at;             // resolved: when it stopped
};

// Where events go besides the log and the metrics.
class AlertNotifier {
 public:
  virtual ~AlertNotifier() = default;
  // Called on the evaluation thread: must not block on the network.
  virtual void Notify(const AlertEvent& event) = 0;
  // The notifier's own series for /metrics (e.g. webhook failures).
  virtual std::string RenderPrometheus() const { return {}; }
};

// A rule in effect: from the file (`model` as the rule says) or a model's
// config (`model` is that model).
struct RuleView {
  AlertRule rule;
  std::string source;  // "file" or "config"
  std::string model;   // empty: every model
};

// One rule applied to one version, as of the last evaluation.
struct InstanceView {
  std::string alert;
  std::string source;
  std::string model;
  int64_t version = 0;
  AlertPhase phase = AlertPhase::kInactive;
  std::optional<double> value;
  WallTime active_since;  // pending or firing
  uint64_t firings = 0;
};

class AlertManager {
 public:
  // `file_rules`: the --alerts file's rules. `notifier` may be null; both
  // pointers outlive the manager.
  AlertManager(std::vector<AlertRule> file_rules, const ModelManager* models,
               AlertNotifier* notifier);

  // Gives `metric` its provider (replacing any), before the first Evaluate.
  void SetMetric(std::string metric, MetricProvider provider) LOCKS_EXCLUDED(eval_mu_);
  // InvalidArgument naming the first metric of kAlertMetrics with no
  // provider: a rule could name it and never be evaluated.
  Status CheckMetrics() const LOCKS_EXCLUDED(eval_mu_);

  // Evaluates every rule for every READY version, at `now`.
  void Evaluate(Instant now) LOCKS_EXCLUDED(eval_mu_, view_mu_);

  // The file's rules, then each model's own (from its READY versions).
  std::vector<RuleView> Rules() const;
  std::vector<InstanceView> Instances() const LOCKS_EXCLUDED(view_mu_);
  // berth_alert_firing{alert,model,version} (1 firing, 0 not) and
  // berth_alert_firings_total for every instance; the notifier's series.
  std::string RenderPrometheus() const LOCKS_EXCLUDED(view_mu_);

 private:
  // (alert, model, version): one rule of a given name applies per version.
  using InstanceKey = std::tuple<std::string, std::string, int64_t>;
  struct Instance {
    AlertRule rule;
    std::string source;
    AlertState state;
    uint64_t firings = 0;
  };
  // The rules that apply to `version`, one per name: the file's (for its
  // model before those for all models), each replaced by the model
  // config's rule of the same name, then the config's other rules.
  std::vector<std::pair<const AlertRule*, const char*>> RulesFor(const Model& version) const;
  void Tell(const Instance& instance, const std::string& model, int64_t version, bool firing);

  const std::vector<AlertRule> file_rules_;
  const ModelManager* models_;
  AlertNotifier* notifier_;

  mutable std::mutex eval_mu_;
  std::map<std::string, MetricProvider> providers_ GUARDED_BY(eval_mu_);

  mutable std::mutex view_mu_;
  std::map<InstanceKey, Instance> instances_ GUARDED_BY(view_mu_);
};

}  // namespace berth::alerts
