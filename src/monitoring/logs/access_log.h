// AccessLog: one JSON line per answered inference request (id, model,
// version, door, status, durations, sizes), written by a thread of its own.
//
// The request's thread formats its line and appends it to a shared buffer
// under a mutex held only for the append; the writer thread swaps the
// buffer out every 100 ms (or sooner when it grows) and writes it. Lines
// are never written from a request's thread, so a slow disk or terminal
// does not slow requests: past kMaxPendingBytes lines are dropped and
// counted instead. Successful requests log at info, failed ones at warn:
// --log-level warn keeps only the failures. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/inference_service.h"
#include "core/thread_annotations.h"
#include "monitoring/logs/log_file.h"

namespace berth::logs {

class AccessLog {
 public:
  static constexpr size_t kMaxPendingBytes = 8 << 20;

  explicit AccessLog(std::unique_ptr<LogFile> file) : file_(std::move(file)) {}
  ~AccessLog() { Stop(); }

  // Formats and queues `summary`'s line (nothing below the log level).
  void Record(const RequestSummary& summary) LOCKS_EXCLUDED(mu_);

  void Start() LOCKS_EXCLUDED(mu_);
  // Writes what is queued and ends the writer thread.
  void Stop() LOCKS_EXCLUDED(mu_);

  uint64_t lines() const { return lines_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

  // The line for `summary`, newline included.
  static void Format(const RequestSummary& summary, std::string* line);

 private:
  void Run() LOCKS_EXCLUDED(mu_);

  std::unique_ptr<LogFile> file_;  // written by the writer thread only
  std::mutex mu_;
  std::condition_variable wake_;
  std::string pending_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread writer_;
  std::atomic<uint64_t> lines_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> write_errors_{0};
};

}  // namespace berth::logs
