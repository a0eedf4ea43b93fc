// The alert rules of a model's config (`alerts:`) and of the server's
// alerts file (--alerts): what they read and what they refuse.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "registry/config_parser.h"

namespace berth {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string FileError(const std::string& text) {
  auto f = ParseAlertsFile(text);
  if (f.ok()) return "<parsed without error>";
  EXPECT_EQ(f.status().code(), Status::Code::kInvalidArgument) << f.status().ToString();
  return f.status().message();
}

std::string ConfigError(const std::string& text) {
  auto c = ParseModelConfig(text);
  if (c.ok()) return "<parsed without error>";
  EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument) << c.status().ToString();
  return c.status().message();
}

TEST(ParseAlertsTest, ModelConfigRules) {
  auto c = ParseModelConfig(R"(
alerts:
  - alert: IrisErrors
    metric: error_rate
    op: ">"
    threshold: 0.01
    window: 5m
    for: 1m30s
    labels: {severity: page}
    summary: too many errors
  - alert: IrisDrift
    metric: drift_psi
    op: ">="
    threshold: 0.2
    feature: petal_length
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->alerts.size(), 2u);
  const AlertRule& r = c->alerts[0];
  EXPECT_EQ(r.name, "IrisErrors");
  EXPECT_EQ(r.metric, "error_rate");
  EXPECT_EQ(r.op, AlertComparison::kGreater);
  EXPECT_EQ(r.threshold, 0.01);
  EXPECT_EQ(r.window, 5min);
  EXPECT_EQ(r.for_duration, 90s);
  EXPECT_EQ(r.labels.at("severity"), "page");
  EXPECT_EQ(r.summary, "too many errors");
  EXPECT_TRUE(r.model.empty());
  const AlertRule& d = c->alerts[1];
  EXPECT_EQ(d.op, AlertComparison::kGreaterOrEqual);
  EXPECT_EQ(d.window, 0ms);
  EXPECT_EQ(d.for_duration, 0ms);
  EXPECT_EQ(d.feature, "petal_length");
}

TEST(ParseAlertsTest, AlertsFile) {
  auto f = ParseAlertsFile(R"(
webhook:
  url: http://127.0.0.1:9093/hook
  timeout: 500ms
  retries: 1
rules:
  - alert: SlowP99
    model: iris
    metric: latency_p99
    op: ">"
    threshold: 0.25
    window: 10m
  - alert: SlowP99
    metric: latency_p99
    op: ">"
    threshold: 0.5
    window: 10m
)");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->webhook.url, "http://127.0.0.1:9093/hook");
  EXPECT_EQ(f->webhook.timeout, 500ms);
  EXPECT_EQ(f->webhook.retries, 1);
  ASSERT_EQ(f->rules.size(), 2u);
  EXPECT_EQ(f->rules[0].model, "iris");
  EXPECT_TRUE(f->rules[1].model.empty());
  // An empty file is no rules and no webhook.
  auto empty = ParseAlertsFile("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->rules.empty());
  EXPECT_TRUE(empty->webhook.url.empty());
}

TEST(ParseAlertsTest, MalformedRulesNameTheField) {
  const std::string head = "rules:\n  - alert: A\n";
  EXPECT_THAT(FileError(head + "    metric: error_ratio\n    op: '>'\n    threshold: 1\n"
                               "    window: 1m\n"),
              HasSubstr("rules[0].metric 'error_ratio' is not a metric alerts know (error_rate"));
  EXPECT_THAT(FileError(head + "    metric: error_rate\n    op: '=>'\n    threshold: 1\n"
                               "    window: 1m\n"),
              HasSubstr("rules[0].op '=>' is not one of >, >=, <, <="));
  EXPECT_THAT(FileError(head + "    metric: error_rate\n    op: '>'\n    threshold: 1\n"
                               "    window: -5m\n"),
              HasSubstr("rules[0].window '-5m' is not a duration"));
  EXPECT_THAT(FileError(head + "    metric: error_rate\n    op: '>'\n    threshold: 1\n"
                               "    window: 0s\n"),
              HasSubstr("rules[0].window must be above 0"));
  EXPECT_THAT(FileError(head + "    metric: error_rate\n    op: '>'\n    threshold: 1\n"),
              HasSubstr("rules[0] needs a 'window'"));
  EXPECT_THAT(FileError(head + "    metric: in_flight\n    op: '>'\n    threshold: 1\n"
                               "    window: 1m\n"),
              HasSubstr("rules[0].window is not used by metric 'in_flight'"));
  EXPECT_THAT(FileError(head + "    metric: error_rate\n    op: '>'\n    threshold: x\n"
                               "    window: 1m\n"),
              HasSubstr("field 'rules[0].threshold' has an invalid value"));
  EXPECT_THAT(FileError(head + "    metric: error_rate\n    op: '>'\n    threshold: .nan\n"
                               "    window: 1m\n"),
              HasSubstr("rules[0].threshold must be a finite number"));
  EXPECT_THAT(FileError(head + "    metric: error_rate\n    op: '>'\n    threshold: 1\n"
                               "    window: 1m\n    for: 5 minutes\n"),
              HasSubstr("rules[0].for '5 minutes' is not a duration"));
  EXPECT_THAT(FileError(head + "    metric: error_rate\n    op: '>'\n    threshold: 1\n"
                               "    window: 1m\n    severity: page\n"),
              HasSubstr("unknown field 'severity' in rules[0]"));
  EXPECT_THAT(FileError(head + "    metric: error_rate\n    op: '>'\n    threshold: 1\n"
                               "    window: 1m\n    feature: x\n"),
              HasSubstr("rules[0].feature is used only by the drift metrics"));
  EXPECT_THAT(FileError(head + "    metric: error_rate\n    op: '>'\n    threshold: 1\n"
                               "    window: 1m\n    labels: {model: x}\n"),
              HasSubstr("rules[0].labels: 'model' is set by Berth"));
  EXPECT_THAT(FileError("rules:\n  - alert: 'a b'\n    metric: in_flight\n    op: '>'\n"
                        "    threshold: 1\n"),
              HasSubstr("rules[0].alert 'a b' must be"));
  EXPECT_THAT(FileError("rules:\n  - metric: in_flight\n    op: '>'\n    threshold: 1\n"),
              HasSubstr("rules[0] needs 'alert'"));
  const std::string rule = "  - alert: A\n    metric: in_flight\n    op: '>'\n    threshold: 1\n";
  EXPECT_THAT(FileError("rules:\n" + rule + rule),
              HasSubstr("rules[1].alert 'A' is used by an earlier rule"));
  EXPECT_THAT(FileError("webhook:\n  url: http://x/\n  retries: 99\n"),
              HasSubstr("webhook.retries must be from 0 to 10"));
  EXPECT_THAT(FileError("webhook: {timeout: 1s}\n"), HasSubstr("webhook needs a 'url'"));
  EXPECT_THAT(FileError("groups: []\n"), HasSubstr("unknown field 'groups' in the alerts file"));
}

TEST(ParseAlertsTest, ModelConfigRulesNameNoModel) {
  EXPECT_THAT(ConfigError("alerts:\n  - alert: A\n    model: other\n    metric: in_flight\n"
                          "    op: '>'\n    threshold: 1\n"),
              HasSubstr("unknown field 'model' in alerts[0]"));
  EXPECT_THAT(ConfigError("alerts:\n  - alert: A\n    metric: p99\n    op: '>'\n    threshold: 1\n"),
              HasSubstr("alerts[0].metric 'p99' is not a metric alerts know"));
  EXPECT_THAT(ConfigError("alerts: {a: 1}\n"), HasSubstr("'alerts' must be a list"));
}

}  // namespace
}  // namespace berth
