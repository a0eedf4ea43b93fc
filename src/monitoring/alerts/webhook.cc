#include "monitoring/alerts/webhook.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>

#include "core/logging.h"

namespace berth::alerts {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void String(Writer* w, const std::string& s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void Pair(Writer* w, const char* key, const std::string& value) {
  w->Key(key);
  String(w, value);
}

void Number(Writer* w, const char* key, std::optional<double> v) {
  w->Key(key);
  if (v && std::isfinite(*v)) {
    w->Double(*v);
  } else {
    w->Null();
  }
}

void Object(Writer* w, const char* key, const std::map<std::string, std::string>& m) {
  w->Key(key);
  w->StartObject();
  for (const auto& [k, v] : m) Pair(w, k.c_str(), v);
  w->EndObject();
}

// FNV-1a over the labels, as a stable id of the alert (Alertmanager's
// fingerprint is a hash of the label set too).
std::string Fingerprint(const std::map<std::string, std::string>& labels) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& [k, v] : labels) {
    for (const std::string* s : {&k, &v}) {
      for (unsigned char c : *s) h = (h ^ c) * 1099511628211ull;
      h = (h ^ 0xFF) * 1099511628211ull;
    }
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(h));
  return text;
}

}  // namespace

std::string Rfc3339(WallTime t) {
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  if (ms <= 0) return "0001-01-01T00:00:00Z";
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[40];
  const size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(text + n, sizeof(text) - n, ".%03dZ", static_cast<int>(ms % 1000));
  return text;
}

std::string AlertmanagerPayload(const AlertEvent& e) {
  const std::string status = e.firing ? "firing" : "resolved";
  std::map<std::string, std::string> labels = e.rule.labels;
  labels["alertname"] = e.rule.name;
  labels["model"] = e.model;
  labels["version"] = e.version;
  labels["metric"] = e.rule.metric;
  char threshold[32];
  std::snprintf(threshold, sizeof(threshold), "%g", e.rule.threshold);
  std::string value = "no data";
  if (e.value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", *e.value);
    value = text;
  }
  std::map<std::string, std::string> annotations;
  annotations["summary"] = !e.rule.summary.empty()
                               ? e.rule.summary
                               : e.model + " v" + e.version + ": " + e.rule.metric + " " + value +
                                     " (" + std::string(AlertComparisonName(e.rule.op)) + " " +
                                     threshold + ")";
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Pair(&w, "version", "4");
  Pair(&w, "groupKey", "{}:{alertname=\"" + e.rule.name + "\"}");
  Pair(&w, "status", status);
  Pair(&w, "receiver", "berth");
  Object(&w, "groupLabels", {{"alertname", e.rule.name}});
  Object(&w, "commonLabels", labels);
  Object(&w, "commonAnnotations", annotations);
  Pair(&w, "externalURL", "");
  w.Key("alerts");
  w.StartArray();
  w.StartObject();
  Pair(&w, "status", status);
  Object(&w, "labels", labels);
  Object(&w, "annotations", annotations);
  Pair(&w, "startsAt", Rfc3339(e.starts_at));
  Pair(&w, "endsAt", e.firing ? Rfc3339(WallTime{}) : Rfc3339(e.ends_at));
  Pair(&w, "generatorURL", "");
  Pair(&w, "fingerprint", Fingerprint(labels));
  // Berth's own fields: the rule as configured and the figure it read.
  Pair(&w, "rule", e.rule.name);
  Pair(&w, "model", e.model);
  Pair(&w, "version", e.version);
  Pair(&w, "metric", e.rule.metric);
  Pair(&w, "op", std::string(AlertComparisonName(e.rule.op)));
  Number(&w, "value", e.value);
  Number(&w, "threshold", e.rule.threshold);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return buffer.GetString();
}

StatusOr<std::unique_ptr<WebhookNotifier>> WebhookNotifier::Create(
    const AlertWebhookConfig& config) {
  StatusOr<net::ServerUrl> url = net::ParseServerUrl(config.url);
  if (!url.ok()) return url.status().WithContext("the alerts file's webhook.url");
  if (!url->tls && !config.ca_file.empty()) {
    return Status::InvalidArgument("the alerts file's webhook.ca_file is for an https:// url");
  }
  std::unique_ptr<WebhookNotifier> notifier(new WebhookNotifier(config, std::move(url).value()));
  if (!notifier->client_.tls_status().ok()) {
    return notifier->client_.tls_status().WithContext("the alerts file's webhook.ca_file");
  }
  return notifier;
}

WebhookNotifier::WebhookNotifier(const AlertWebhookConfig& config, net::ServerUrl url)
    // The client puts the URL's path before the target: the target is
    // empty, or "/" when the URL has no path.
    : config_(config),
      target_(url.path_prefix.empty() ? "/" : ""),
      client_(std::move(url), config.timeout, config.ca_file) {
  thread_ = std::thread([this] { Loop(); });
}

WebhookNotifier::~WebhookNotifier() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void WebhookNotifier::Notify(const AlertEvent& event) {
  std::string body = AlertmanagerPayload(event);
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(body));
  }
  cv_.notify_all();
}

void WebhookNotifier::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    std::string body = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    (Send(body) ? sent_ : failed_).fetch_add(1, std::memory_order_relaxed);
    lock.lock();
  }
}

bool WebhookNotifier::Send(const std::string& body) {
  auto backoff = std::chrono::milliseconds(500);
  for (int attempt = 0;; ++attempt) {
    StatusOr<net::HttpResponse> r = client_.Post(target_, body, "application/json", {});
    if (r.ok() && r->status / 100 == 2) return true;
    const std::string error = r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message();
    if (attempt >= config_.retries) {
      LOG_WARN("alert webhook failed; the notification is dropped",
               {{"url", config_.url}, {"attempts", std::to_string(attempt + 1)}, {"error", error}});
      return false;
    }
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, backoff, [this] { return stop_; })) return false;
    backoff *= 2;
  }
}

std::string WebhookNotifier::RenderPrometheus() const {
  std::string out =
      "# HELP berth_alert_webhook_total Alert notifications by outcome: sent (answered 2xx), "
      "failed (every attempt failed), dropped (the queue was full).\n"
      "# TYPE berth_alert_webhook_total counter\n";
  out += "berth_alert_webhook_total{outcome=\"sent\"} " + std::to_string(sent_.load()) + "\n";
  out += "berth_alert_webhook_total{outcome=\"failed\"} " + std::to_string(failed_.load()) + "\n";
  out += "berth_alert_webhook_total{outcome=\"dropped\"} " + std::to_string(dropped_.load()) +
         "\n";
  return out;
}

}  // namespace berth::alerts
