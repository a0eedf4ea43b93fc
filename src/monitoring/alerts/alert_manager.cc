#include "monitoring/alerts/alert_manager.h"

#include <cstdio>
#include <set>
#include <utility>

#include "core/logging.h"
#include "monitoring/metrics.h"

namespace berth::alerts {
namespace {

std::string Number(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", v);
  return text;
}

}  // namespace

AlertManager::AlertManager(std::vector<AlertRule> file_rules, const ModelManager* models,
                           AlertNotifier* notifier)
    : file_rules_(std::move(file_rules)), models_(models), notifier_(notifier) {}

void AlertManager::SetMetric(std::string metric, MetricProvider provider) {
  std::lock_guard lock(eval_mu_);
  providers_[std::move(metric)] = std::move(provider);
}

Status AlertManager::CheckMetrics() const {
  std::lock_guard lock(eval_mu_);
  for (const AlertMetric& m : kAlertMetrics) {
    if (providers_.count(std::string(m.name)) == 0) {
      return Status::Internal("alert metric '" + std::string(m.name) + "' has no provider");
    }
  }
  return Status::Ok();
}

std::vector<std::pair<const AlertRule*, const char*>> AlertManager::RulesFor(
    const Model& version) const {
  std::vector<std::pair<const AlertRule*, const char*>> out;
  const std::vector<AlertRule>& own = version.config.alerts;
  auto own_rule = [&own](const std::string& name) -> const AlertRule* {
    for (const AlertRule& r : own) {
      if (r.name == name) return &r;
    }
    return nullptr;
  };
  std::set<std::string> names;
  // The file's rules for this model first, so that they beat the ones of
  // the same name for every model.
  for (bool for_model : {true, false}) {
    for (const AlertRule& r : file_rules_) {
      if (for_model ? r.model != version.name : !r.model.empty()) continue;
      if (!names.insert(r.name).second) continue;
      const AlertRule* replaced = own_rule(r.name);
      out.emplace_back(replaced != nullptr ? replaced : &r,
                       replaced != nullptr ? "config" : "file");
    }
  }
  for (const AlertRule& r : own) {
    if (names.insert(r.name).second) out.emplace_back(&r, "config");
  }
  return out;
}

void AlertManager::Evaluate(Instant now) {
  std::lock_guard eval(eval_mu_);
  std::set<InstanceKey> seen;
  std::vector<AlertEvent> events;
  models_->ForEachReadyModel([&](const Model& version) {
    for (const auto& [rule, source] : RulesFor(version)) {
      std::optional<double> value;
      auto provider = providers_.find(rule->metric);
      if (provider != providers_.end()) value = provider->second({version, *rule, now});
      const bool holds = value && AlertCompare(rule->op, *value, rule->threshold);
      const InstanceKey key(rule->name, version.name, version.version);
      seen.insert(key);
      std::lock_guard lock(view_mu_);
      Instance& instance = instances_[key];
      instance.rule = *rule;
      instance.source = source;
      const AlertTransition t = instance.state.Step(value, holds, now, rule->for_duration);
      if (t == AlertTransition::kNone) continue;
      if (t == AlertTransition::kFired) ++instance.firings;
      events.push_back({t == AlertTransition::kFired, *rule, version.name,
                        std::to_string(version.version), value, instance.state.active_since(),
                        instance.state.resolved_at()});
    }
  });
  {
    std::lock_guard lock(view_mu_);
    for (auto it = instances_.begin(); it != instances_.end();) {
      if (seen.count(it->first) != 0) {
        ++it;
        continue;
      }
      // The version left, or the rule no longer applies to it: a firing
      // alert resolves rather than staying open forever.
      Instance& instance = it->second;
      if (instance.state.Retire(now) == AlertTransition::kResolved) {
        events.push_back({false, instance.rule, std::get<1>(it->first),
                          std::to_string(std::get<2>(it->first)), std::nullopt,
                          instance.state.active_since(), instance.state.resolved_at()});
      }
      it = instances_.erase(it);
    }
  }
  for (const AlertEvent& e : events) {
    const std::string value = e.value ? Number(*e.value) : "none";
    const std::string threshold = Number(e.rule.threshold);
    const std::string op(AlertComparisonName(e.rule.op));
    if (e.firing) {
      LOG_WARN("alert firing", {{"alert", e.rule.name}, {"model", e.model}, {"version", e.version},
                                {"metric", e.rule.metric}, {"value", value}, {"op", op},
                                {"threshold", threshold}});
    } else {
      LOG_INFO("alert resolved", {{"alert", e.rule.name}, {"model", e.model},
                                  {"version", e.version}, {"metric", e.rule.metric},
                                  {"value", value}, {"op", op}, {"threshold", threshold}});
    }
    if (notifier_ != nullptr) notifier_->Notify(e);
  }
}

std::vector<RuleView> AlertManager::Rules() const {
  std::vector<RuleView> rules;
  for (const AlertRule& r : file_rules_) rules.push_back({r, "file", r.model});
  // A model's rules as its READY versions have them (one config per model).
  std::set<std::string> seen;
  models_->ForEachReadyModel([&](const Model& version) {
    if (version.config.alerts.empty() || !seen.insert(version.name).second) return;
    for (const AlertRule& r : version.config.alerts) rules.push_back({r, "config", version.name});
  });
  return rules;
}

std::vector<InstanceView> AlertManager::Instances() const {
  std::lock_guard lock(view_mu_);
  std::vector<InstanceView> out;
  for (const auto& [key, instance] : instances_) {
    out.push_back({std::get<0>(key), instance.source, std::get<1>(key), std::get<2>(key),
                   instance.state.phase(), instance.state.value(), instance.state.active_since(),
                   instance.firings});
  }
  return out;
}

std::string AlertManager::RenderPrometheus() const {
  std::string out =
      "# HELP berth_alert_firing 1 while the alert fires for the model version, else 0 "
      "(docs/monitoring.md#alerts).\n# TYPE berth_alert_firing gauge\n";
  std::string firings =
      "# HELP berth_alert_firings_total Times the alert fired for the model version.\n"
      "# TYPE berth_alert_firings_total counter\n";
  {
    std::lock_guard lock(view_mu_);
    for (const auto& [key, instance] : instances_) {
      const std::string labels = "{alert=\"" + PrometheusLabelValue(std::get<0>(key)) +
                                 "\",model=\"" + PrometheusLabelValue(std::get<1>(key)) +
                                 "\",version=\"" + std::to_string(std::get<2>(key)) + "\"}";
      out += "berth_alert_firing" + labels + " " +
             (instance.state.phase() == AlertPhase::kFiring ? "1" : "0") + "\n";
      firings += "berth_alert_firings_total" + labels + " " + std::to_string(instance.firings) +
                 "\n";
    }
  }
  out += firings;
  if (notifier_ != nullptr) out += notifier_->RenderPrometheus();
  return out;
}

}  // namespace berth::alerts
