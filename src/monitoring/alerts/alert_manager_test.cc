#include "monitoring/alerts/alert_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "monitoring/alerts/builtin_metrics.h"
#include "monitoring/metrics.h"

namespace berth::alerts {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

class RecordingNotifier : public AlertNotifier {
 public:
  void Notify(const AlertEvent& e) override { events.push_back(e); }
  std::vector<AlertEvent> events;
};

AlertRule Rule(std::string name, std::string metric, double threshold,
               std::chrono::milliseconds for_duration = 0ms, std::string model = "") {
  AlertRule r;
  r.name = std::move(name);
  r.metric = std::move(metric);
  r.op = AlertComparison::kGreater;
  r.threshold = threshold;
  r.for_duration = for_duration;
  r.model = std::move(model);
  if (FindAlertMetric(r.metric)->windowed) r.window = 60s;
  return r;
}

// Publishes `name` with READY versions, each with `own` as its config's alerts.
void Publish(ModelManager* models, const std::string& name, std::vector<int64_t> versions,
             std::vector<AlertRule> own = {}) {
  ModelEntry e;
  e.name = name;
  for (int64_t v : versions) {
    auto m = std::make_shared<Model>();
    m->name = name;
    m->version = v;
    m->config.alerts = own;
    e.versions.push_back({v, ModelState::kReady, "", m});
  }
  models->Set(e);
}

struct Clock {
  Instant now{SteadyTime(1000s), WallTime(1'764'600'000s)};
  Instant Tick(std::chrono::milliseconds d = 1s) {
    now.steady += d;
    now.wall += d;
    return now;
  }
};

// Every metric reads `values[model]` (none when absent).
void SetStubMetrics(AlertManager* manager, const std::map<std::string, double>* values) {
  for (const AlertMetric& m : kAlertMetrics) {
    manager->SetMetric(std::string(m.name), [values](const MetricQuery& q) -> std::optional<double> {
      auto it = values->find(q.version.name);
      if (it == values->end()) return std::nullopt;
      return it->second;
    });
  }
}

TEST(AlertManagerTest, FiresOnceAfterForAndResolvesOnce) {
  ModelManager models;
  Publish(&models, "iris", {1});
  RecordingNotifier notifier;
  AlertManager manager({Rule("HighErrors", "error_rate", 0.01, 2s)}, &models, &notifier);
  std::map<std::string, double> values = {{"iris", 0.5}};
  SetStubMetrics(&manager, &values);
  ASSERT_TRUE(manager.CheckMetrics().ok());
  Clock clock;
  manager.Evaluate(clock.now);
  EXPECT_TRUE(notifier.events.empty());
  ASSERT_EQ(manager.Instances().size(), 1u);
  EXPECT_EQ(manager.Instances()[0].phase, AlertPhase::kPending);
  manager.Evaluate(clock.Tick());
  EXPECT_TRUE(notifier.events.empty());
  manager.Evaluate(clock.Tick());
  ASSERT_EQ(notifier.events.size(), 1u);
  const AlertEvent& fired = notifier.events[0];
  EXPECT_TRUE(fired.firing);
  EXPECT_EQ(fired.rule.name, "HighErrors");
  EXPECT_EQ(fired.model, "iris");
  EXPECT_EQ(fired.version, "1");
  EXPECT_EQ(*fired.value, 0.5);
  EXPECT_EQ(fired.starts_at, WallTime(1'764'600'000s));
  EXPECT_THAT(manager.RenderPrometheus(),
              HasSubstr("berth_alert_firing{alert=\"HighErrors\",model=\"iris\",version=\"1\"} 1\n"));
  manager.Evaluate(clock.Tick());
  EXPECT_EQ(notifier.events.size(), 1u);
  values["iris"] = 0.001;
  manager.Evaluate(clock.Tick());
  ASSERT_EQ(notifier.events.size(), 2u);
  EXPECT_FALSE(notifier.events[1].firing);
  EXPECT_EQ(notifier.events[1].ends_at, clock.now.wall);
  manager.Evaluate(clock.Tick());
  EXPECT_EQ(notifier.events.size(), 2u);
  const std::string text = manager.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("berth_alert_firing{alert=\"HighErrors\",model=\"iris\",version=\"1\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("berth_alert_firings_total{alert=\"HighErrors\",model=\"iris\",version=\"1\"} 1\n"));
}

TEST(AlertManagerTest, RulesApplyPerModelAndConfigRulesReplaceFileRules) {
  ModelManager models;
  // iris's own HighErrors (threshold 0.9) replaces the file's (0.01).
  Publish(&models, "iris", {1, 2}, {Rule("HighErrors", "error_rate", 0.9)});
  Publish(&models, "wine", {1});
  Publish(&models, "other", {1});
  RecordingNotifier notifier;
  AlertManager manager({Rule("HighErrors", "error_rate", 0.01),
                        Rule("WineOnly", "in_flight", 0.0, 0ms, "wine")},
                       &models, &notifier);
  std::map<std::string, double> values = {{"iris", 0.5}, {"wine", 0.5}};
  SetStubMetrics(&manager, &values);
  manager.Evaluate(Clock().now);
  std::map<std::string, int> fired;
  for (const AlertEvent& e : notifier.events) ++fired[e.rule.name + "/" + e.model + "/" + e.version];
  EXPECT_EQ(fired, (std::map<std::string, int>{{"HighErrors/wine/1", 1}, {"WineOnly/wine/1", 1}}));
  // iris's versions are evaluated against its own rule, "other" has no data.
  size_t iris = 0;
  for (const InstanceView& i : manager.Instances()) {
    if (i.model != "iris") continue;
    ++iris;
    EXPECT_EQ(i.source, "config");
    EXPECT_EQ(i.phase, AlertPhase::kInactive);
  }
  EXPECT_EQ(iris, 2u);
  // The rules listed: the file's two, and iris's own.
  std::vector<std::string> listed;
  for (const RuleView& r : manager.Rules()) listed.push_back(r.source + ":" + r.rule.name + ":" + r.model);
  EXPECT_EQ(listed, (std::vector<std::string>{"file:HighErrors:", "file:WineOnly:wine",
                                              "config:HighErrors:iris"}));
}

TEST(AlertManagerTest, AVersionThatLeavesResolvesItsAlert) {
  ModelManager models;
  Publish(&models, "iris", {1});
  RecordingNotifier notifier;
  AlertManager manager({Rule("Busy", "in_flight", 1)}, &models, &notifier);
  std::map<std::string, double> values = {{"iris", 5}};
  SetStubMetrics(&manager, &values);
  Clock clock;
  manager.Evaluate(clock.now);
  ASSERT_EQ(notifier.events.size(), 1u);
  models.Remove("iris");
  manager.Evaluate(clock.Tick());
  ASSERT_EQ(notifier.events.size(), 2u);
  EXPECT_FALSE(notifier.events[1].firing);
  EXPECT_TRUE(manager.Instances().empty());
  EXPECT_EQ(manager.RenderPrometheus().find("berth_alert_firing{"), std::string::npos);
}

TEST(AlertManagerTest, AMetricWithoutAProviderIsRefused) {
  ModelManager models;
  AlertManager manager({}, &models, nullptr);
  Status s = manager.CheckMetrics();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("alert metric 'error_rate' has no provider"));
}

// The built-in error rate, from the metrics' own counters: failures cross
// 1%, the alert fires; the window moves past them, it resolves.
TEST(AlertManagerTest, BuiltinErrorRateOverTheWindow) {
  ModelManager models;
  Publish(&models, "iris", {1});
  Metrics metrics;
  drift::DriftMonitor drift([](const std::string&, int64_t) {
    return StatusOr<std::optional<drift::SourcedBaseline>>(std::nullopt);
  });
  RecordingNotifier notifier;
  AlertRule rule = Rule("HighErrors", "error_rate", 0.01);
  rule.window = 10s;
  AlertManager manager({rule}, &models, &notifier);
  AddBuiltinMetrics(&metrics, &drift, &manager);
  // Live accuracy's metrics come from the feedback monitor, not the builtins.
  for (const char* name : {"accuracy_drop", "f1_drop", "mae_rise", "rmse_rise"}) {
    manager.SetMetric(name, [](const MetricQuery&) { return std::optional<double>(); });
  }
  ASSERT_TRUE(manager.CheckMetrics().ok());
  auto record = [&metrics](int success, int failure) {
    InferenceTimings t;
    t.total = 2ms;
    for (int i = 0; i < success; ++i) metrics.OnInferenceDone("iris", "1", Status::Ok(), t);
    for (int i = 0; i < failure; ++i) {
      metrics.OnInferenceDone("iris", "1", Status::InvalidArgument("bad"), t);
    }
  };
  Clock clock;
  manager.Evaluate(clock.now);  // the first snapshot
  record(99, 0);
  manager.Evaluate(clock.Tick());
  EXPECT_TRUE(notifier.events.empty());
  EXPECT_EQ(*manager.Instances()[0].value, 0.0);
  record(0, 2);  // 2 of 101: 1.98%
  manager.Evaluate(clock.Tick());
  ASSERT_EQ(notifier.events.size(), 1u);
  EXPECT_NEAR(*notifier.events[0].value, 2.0 / 101, 1e-12);
  // Healthy traffic: after the window, the failures are out of it.
  for (int i = 0; i < 12; ++i) {
    record(10, 0);
    manager.Evaluate(clock.Tick());
  }
  ASSERT_EQ(notifier.events.size(), 2u);
  EXPECT_FALSE(notifier.events[1].firing);
  EXPECT_EQ(*notifier.events[1].value, 0.0);
}

TEST(AlertManagerTest, BuiltinLatencyAndInFlight) {
  ModelManager models;
  Publish(&models, "iris", {1});
  Metrics metrics;
  drift::DriftMonitor drift([](const std::string&, int64_t) {
    return StatusOr<std::optional<drift::SourcedBaseline>>(std::nullopt);
  });
  AlertManager manager({Rule("Slow", "latency_p99", 0.1), Rule("Busy", "in_flight", 100),
                        Rule("Drift", "drift_psi", 0.2)},
                       &models, nullptr);
  AddBuiltinMetrics(&metrics, &drift, &manager);
  Clock clock;
  manager.Evaluate(clock.now);
  InferenceTimings t;
  t.total = 300ms;  // bucket (0.25, 0.5] s
  for (int i = 0; i < 10; ++i) metrics.OnInferenceDone("iris", "1", Status::Ok(), t);
  manager.Evaluate(clock.Tick());
  std::map<std::string, InstanceView> by_alert;
  for (const InstanceView& i : manager.Instances()) by_alert[i.alert] = i;
  EXPECT_EQ(by_alert["Slow"].phase, AlertPhase::kFiring);
  EXPECT_NEAR(*by_alert["Slow"].value, 0.25 + 0.25 * 0.99, 1e-9);
  EXPECT_EQ(*by_alert["Busy"].value, 0.0);
  // No baseline: the drift rule has no value.
  EXPECT_FALSE(by_alert["Drift"].value.has_value());
}

// The evaluation thread steps states while /metrics and /v2/alerts read
// them and versions come and go (run under TSan).
TEST(AlertManagerTest, ConcurrentEvaluationAndReads) {
  ModelManager models;
  Publish(&models, "iris", {1});
  RecordingNotifier notifier;
  AlertManager manager({Rule("Busy", "in_flight", 0.5)}, &models, &notifier);
  std::map<std::string, double> values = {{"iris", 1}};
  SetStubMetrics(&manager, &values);
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      manager.RenderPrometheus();
      manager.Instances();
      manager.Rules();
    }
  });
  Clock clock;
  for (int i = 0; i < 200; ++i) {
    if (i % 2 == 0) {
      Publish(&models, "iris", {1});
    } else {
      models.Remove("iris");
    }
    manager.Evaluate(clock.Tick());
  }
  stop = true;
  reader.join();
  // Each publication fired, each removal resolved.
  EXPECT_EQ(notifier.events.size(), 200u);
}

}  // namespace
}  // namespace berth::alerts
