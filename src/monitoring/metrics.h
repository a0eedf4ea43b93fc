// Prometheus metrics for inference: request counts, failures by reason and
// latency histograms per model and version, and model readiness gauges.
//
// Recording is lock-free after a series exists (atomics); creating a series
// takes a write lock once per (model, version). Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "core/inference_service.h"
#include "core/model_manager.h"
#include "core/status.h"
#include "core/thread_annotations.h"

namespace berth {

class Metrics final : public InferenceObserver, public ModelTableObserver {
 public:
  // Upper bounds of the latency histogram buckets, in seconds.
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   5.0};

  // Records one finished inference request. Requests for unknown models
  // (empty `model`) share one counter, so that names sent by clients cannot
  // grow the series without bound.
  void OnInferenceDone(const std::string& model, const std::string& version, const Status& status,
                       std::chrono::nanoseconds duration) override LOCKS_EXCLUDED(mu_);

  // Records one shadow request: agreement with the live answer, the mean
  // absolute difference of floating-point outputs, failures, and latency,
  // per model and shadow version.
  void OnShadowDone(const std::string& model, const std::string& shadow_version,
                    const Status& status, const ShadowComparison* comparison,
                    std::chrono::nanoseconds duration) override LOCKS_EXCLUDED(mu_);

  // Drops the series of the versions `name` no longer has (all of them when
  // `entry` is null), so that the series stay bounded by the versions
  // present, however many come and go.
  void OnModelChanged(const std::string& name, const ModelEntry* entry) override
      LOCKS_EXCLUDED(mu_);

  // The Prometheus text exposition format (version 0.0.4), including
  // readiness gauges for every version `models` knows. Only versions that
  // `models` still has are rendered: a request that finishes on a retired
  // version after its series was dropped cannot bring it back.
  std::string RenderPrometheus(const ModelManager& models) const LOCKS_EXCLUDED(mu_);

 private:
  struct Series {
    std::atomic<uint64_t> success{0};
    // Indexed by Status::Code.
    std::array<std::atomic<uint64_t>, static_cast<size_t>(Status::Code::kPermissionDenied) + 1>
        failure_by_code{};
    std::array<std::atomic<uint64_t>, kLatencyBuckets.size() + 1> buckets{};  // +Inf last
    std::atomic<uint64_t> duration_ns{0};
  };
  struct ShadowSeries {
    std::atomic<uint64_t> agree{0};
    std::atomic<uint64_t> differ{0};
    std::atomic<uint64_t> failed{0};
    std::atomic<double> abs_difference_sum{0};
    std::atomic<uint64_t> float_elements{0};
    std::atomic<uint64_t> duration_ns{0};
  };
  using Key = std::pair<std::string, std::string>;  // (model, version)

  // Runs `record` on the series of `key` in `map`, creating it if need be.
  // The series is touched only under mu_ (shared when it exists):
  // OnModelChanged may drop it at any moment, so a pointer to it must not
  // outlive the lock.
  template <typename S, typename F>
  void Record(std::map<Key, std::unique_ptr<S>>& map, const Key& key, F record)
      LOCKS_EXCLUDED(mu_);

  mutable std::shared_mutex mu_;
  std::map<Key, std::unique_ptr<Series>> series_ GUARDED_BY(mu_);
  std::map<Key, std::unique_ptr<ShadowSeries>> shadow_series_ GUARDED_BY(mu_);
  std::atomic<uint64_t> unknown_model_failures_{0};
};

}  // namespace berth
