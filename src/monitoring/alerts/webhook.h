// WebhookNotifier: POSTs each alert that fires or resolves, as JSON in the
// shape of Alertmanager's webhook (so receivers written for it read Berth's
// unchanged), to the alerts file's webhook URL. Notify only queues; a
// thread of its own sends, with a timeout per attempt and retries with
// doubling back-off, so neither requests nor the evaluation ever wait on the
// receiver. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "net/http_client.h"
#include "core/alert_rule.h"
#include "core/status.h"
#include "core/thread_annotations.h"
#include "monitoring/alerts/alert_manager.h"

namespace berth::alerts {

// The webhook's body for `event` (docs/monitoring.md#alerts): Alertmanager's
// version 4 message with one alert, which also carries Berth's rule, model,
// version, value and threshold.
std::string AlertmanagerPayload(const AlertEvent& event);

// RFC 3339 UTC with milliseconds; Alertmanager's zero time for the epoch's
// zero ("0001-01-01T00:00:00Z": no end yet).
std::string Rfc3339(WallTime t);

class WebhookNotifier final : public AlertNotifier {
 public:
  // Events waiting beyond this are dropped (and counted): a receiver that
  // is down must not grow the queue without bound.
  static constexpr size_t kMaxQueued = 1000;

  // InvalidArgument for a URL the client cannot send to, or a ca_file that
  // cannot be read (or is given for an http:// URL). Starts the sending
  // thread.
  static StatusOr<std::unique_ptr<WebhookNotifier>> Create(const AlertWebhookConfig& config);
  // Stops the thread: an attempt in progress finishes (within the
  // timeout), what is still queued is dropped.
  ~WebhookNotifier() override;

  void Notify(const AlertEvent& event) override LOCKS_EXCLUDED(mu_);
  // berth_alert_webhook_total{outcome="sent"|"failed"|"dropped"}.
  std::string RenderPrometheus() const override;

 private:
  WebhookNotifier(const AlertWebhookConfig& config, net::ServerUrl url);
  void Loop() LOCKS_EXCLUDED(mu_);
  // One event, with its retries; false once every attempt failed or the
  // notifier is stopping.
  bool Send(const std::string& body) LOCKS_EXCLUDED(mu_);

  const AlertWebhookConfig config_;
  const std::string target_;
  const net::HttpClient client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> dropped_{0};
  std::thread thread_;
};

}  // namespace berth::alerts
