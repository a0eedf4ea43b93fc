#include "monitoring/alerts/webhook.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace berth::alerts {
namespace {

using namespace std::chrono_literals;

AlertEvent Event(bool firing) {
  AlertEvent e;
  e.firing = firing;
  e.rule.name = "HighErrors";
  e.rule.metric = "error_rate";
  e.rule.op = AlertComparison::kGreaterOrEqual;
  e.rule.threshold = 0.01;
  e.rule.labels = {{"severity", "page"}};
  e.model = "iris";
  e.version = "2";
  e.value = 0.25;
  e.starts_at = WallTime(1'764'600'000'123ms);
  e.ends_at = WallTime(1'764'600'060'000ms);
  return e;
}

TEST(WebhookTest, PayloadIsAlertmanagersShapeWithBerthsFields) {
  rapidjson::Document d;
  const std::string text = AlertmanagerPayload(Event(true));
  ASSERT_FALSE(d.Parse(text.c_str()).HasParseError()) << text;
  EXPECT_STREQ(d["version"].GetString(), "4");
  EXPECT_STREQ(d["status"].GetString(), "firing");
  EXPECT_STREQ(d["receiver"].GetString(), "berth");
  EXPECT_STREQ(d["groupLabels"]["alertname"].GetString(), "HighErrors");
  ASSERT_EQ(d["alerts"].Size(), 1u);
  const auto& a = d["alerts"][0];
  EXPECT_STREQ(a["status"].GetString(), "firing");
  EXPECT_STREQ(a["labels"]["alertname"].GetString(), "HighErrors");
  EXPECT_STREQ(a["labels"]["model"].GetString(), "iris");
  EXPECT_STREQ(a["labels"]["version"].GetString(), "2");
  EXPECT_STREQ(a["labels"]["severity"].GetString(), "page");
  EXPECT_STREQ(a["startsAt"].GetString(), "2025-12-01T14:40:00.123Z");
  EXPECT_STREQ(a["endsAt"].GetString(), "0001-01-01T00:00:00Z");
  EXPECT_STREQ(a["annotations"]["summary"].GetString(), "iris v2: error_rate 0.25 (>= 0.01)");
  EXPECT_STREQ(a["rule"].GetString(), "HighErrors");
  EXPECT_STREQ(a["op"].GetString(), ">=");
  EXPECT_EQ(a["value"].GetDouble(), 0.25);
  EXPECT_EQ(a["threshold"].GetDouble(), 0.01);
  EXPECT_EQ(std::string(a["fingerprint"].GetString()).size(), 16u);
}

TEST(WebhookTest, ResolvedCarriesItsEndAndMayHaveNoValue) {
  AlertEvent e = Event(false);
  e.value.reset();
  rapidjson::Document d;
  const std::string text = AlertmanagerPayload(e);
  ASSERT_FALSE(d.Parse(text.c_str()).HasParseError()) << text;
  EXPECT_STREQ(d["status"].GetString(), "resolved");
  EXPECT_STREQ(d["alerts"][0]["endsAt"].GetString(), "2025-12-01T14:41:00.000Z");
  EXPECT_TRUE(d["alerts"][0]["value"].IsNull());
  // The same alert keeps its fingerprint from firing to resolved.
  rapidjson::Document f;
  f.Parse(AlertmanagerPayload(Event(true)).c_str());
  EXPECT_STREQ(d["alerts"][0]["fingerprint"].GetString(),
               f["alerts"][0]["fingerprint"].GetString());
}

TEST(WebhookTest, UrlsTheClientCannotSendToAreRefused) {
  AlertWebhookConfig c;
  c.url = "https://";
  auto n = WebhookNotifier::Create(c);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("webhook.url"), std::string::npos);
  c.url = "ftp://x";
  EXPECT_FALSE(WebhookNotifier::Create(c).ok());
  // A CA file that cannot be read, or one for a plain http:// receiver.
  c.url = "https://hooks.example.com/x";
  c.ca_file = "/nonexistent/ca.pem";
  n = WebhookNotifier::Create(c);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("webhook.ca_file"), std::string::npos);
  c.url = "http://hooks.example.com/x";
  EXPECT_FALSE(WebhookNotifier::Create(c).ok());
}

}  // namespace
}  // namespace berth::alerts
