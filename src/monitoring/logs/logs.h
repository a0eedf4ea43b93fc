// Logs: the access log and the payload log (each optional, both off by
// default) as one InferenceObserver, and their counters for /metrics.
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "core/inference_service.h"
#include "monitoring/logs/access_log.h"
#include "monitoring/logs/logs_options.h"
#include "monitoring/logs/payload_log.h"

namespace berth::logs {

class Logs final : public InferenceObserver {
 public:
  explicit Logs(LogsOptions options) : options_(std::move(options)) {}
  ~Logs() override { Stop(); }

  // Opens the files (or checks the sink) and starts the writer threads.
  Status Start();
  // Writes what is queued and stops the threads; later events are dropped.
  void Stop();

  void OnInferenceDone(const std::string&, const std::string&, const Status&,
                       const InferenceTimings&) override {}
  void OnRequestLogged(const RequestSummary& summary) override {
    if (access_) access_->Record(summary);
  }
  std::shared_ptr<InferenceSample> OnPayloadRequest(const Model& model,
                                                    const InferenceRequest& request) override {
    return payload_ ? payload_->OnRequest(model, request) : nullptr;
  }
  void OnPayloadResponse(const Model& model, std::shared_ptr<InferenceSample> sample,
                         const StatusOr<InferenceResponse>& response) override {
    if (payload_) payload_->OnResponse(model, std::move(sample), response);
  }

  // The berth_access_log_* and berth_payload_log_* series ("" when both
  // logs are off).
  std::string RenderPrometheus() const;

 private:
  const LogsOptions options_;
  // Set by Start, before any request (the front ends start after it).
  std::unique_ptr<AccessLog> access_;
  std::unique_ptr<PayloadLog> payload_;
};

}  // namespace berth::logs
