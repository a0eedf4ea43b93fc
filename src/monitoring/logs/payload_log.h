// PayloadLog: request and response payloads as CloudEvents
// (cloud_event.h), to a file (JSON lines of structured events, rotated) or
// an HTTP sink (one binary-mode POST per event, as KServe's logger sends).
//
// Off by default. A request is drawn with the log's rate on its own thread,
// which copies its inputs (not the redacted ones); the completing thread
// copies the outputs and queues the pair. One writer thread encodes and
// sends. The queue is bounded (kMaxQueuedEvents pairs, kMaxQueuedBytes of
// tensor data): when the sink is slower than the traffic, pairs are dropped
// and counted, and requests never wait for the sink. A failed POST drops
// its event (counted); nothing is retried. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "core/inference_service.h"
#include "core/thread_annotations.h"
#include "monitoring/logs/log_file.h"

namespace berth::net {
class HttpClient;
}

namespace berth::logs {

struct PayloadLogOptions {
  std::string where;  // a file path or an http:// or https:// URL
  // The CAs an https:// sink's certificate must chain to (PEM); empty: the
  // system's.
  std::string ca_file;
  double rate = 1.0;
  // Input and output names, any model (each version's monitoring.redact
  // adds its own).
  std::set<std::string> redact;
  Retention retention;  // for a file
};

class PayloadLog {
 public:
  static constexpr size_t kMaxQueuedEvents = 1024;
  static constexpr uint64_t kMaxQueuedBytes = 64ull << 20;

  ~PayloadLog();
  // Opens the file, or checks the sink's URL (it is not contacted yet).
  static StatusOr<std::unique_ptr<PayloadLog>> Create(PayloadLogOptions options);

  std::shared_ptr<InferenceSample> OnRequest(const Model& model, const InferenceRequest& request);
  void OnResponse(const Model& model, std::shared_ptr<InferenceSample> sample,
                  const StatusOr<InferenceResponse>& response) LOCKS_EXCLUDED(mu_);

  void Start() LOCKS_EXCLUDED(mu_);
  // Writes or sends what is queued for up to 3 s (a POST under way may
  // take its 5 s timeout), drops the rest, then ends the writer thread.
  void Stop() LOCKS_EXCLUDED(mu_);

  uint64_t events() const { return events_.load(std::memory_order_relaxed); }
  uint64_t dropped_queue_full() const { return dropped_full_.load(std::memory_order_relaxed); }
  uint64_t dropped_sink_error() const { return dropped_error_.load(std::memory_order_relaxed); }

 private:
  struct Pair;
  explicit PayloadLog(PayloadLogOptions options);
  void Run() LOCKS_EXCLUDED(mu_);
  void Emit(const Pair& pair);
  void Send(const struct PayloadEvent& event);

  const PayloadLogOptions options_;
  std::unique_ptr<LogFile> file_;          // a file sink; else
  std::unique_ptr<net::HttpClient> http_;  // an HTTP sink
  std::string http_target_;                // the URL's path
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Pair>> queue_ GUARDED_BY(mu_);
  uint64_t queued_bytes_ GUARDED_BY(mu_) = 0;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread writer_;
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> dropped_full_{0};
  std::atomic<uint64_t> dropped_error_{0};
  std::atomic<uint64_t> next_id_{0};
};

}  // namespace berth::logs
