// Prometheus metrics for inference: request counts, failures by reason,
// latency histograms (total, queue, and each compute phase), batch sizes and
// requests in flight per model and version, and model readiness gauges. The
// same counters answer Triton's statistics extension (StatisticsSource).
//
// Recording takes the series table's lock shared and updates atomics;
// creating a series (once per model and version) or a batch size's counters
// (once per size seen) takes it exclusively. Thread-safe.
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
#include "core/model_statistics.h"
#include "core/status.h"
#include "core/thread_annotations.h"

namespace berth {

// A Prometheus label value escaped as the text exposition format requires
// (backslash, double quote, newline).
std::string PrometheusLabelValue(const std::string& value);

class Metrics final : public InferenceObserver,
                      public ModelTableObserver,
                      public StatisticsSource {
 public:
  // Upper bounds of the latency histogram buckets, in seconds.
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1.0,   5.0};
  // Upper bounds of the batch size histogram buckets, in rows.
  static constexpr std::array<int64_t, 11> kBatchSizeBuckets = {1,  2,   4,   8,   16,  32,
                                                                64, 128, 256, 512, 1024};

  // Records one finished inference request. Requests for unknown models
  // (empty `model`) share one counter, so that names sent by clients cannot
  // grow the series without bound. Batch sizes are bounded by the model's
  // max_batch_size, which the request was validated against.
  void OnInferenceDone(const std::string& model, const std::string& version, const Status& status,
                       const InferenceTimings& timings) override LOCKS_EXCLUDED(mu_);

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

  // One version's counters as they stand, for windows over them (the
  // alerts' error rate, request rate and latency quantiles).
  struct Counters {
    uint64_t success = 0;
    uint64_t failure = 0;
    // Successful requests' total time, per kLatencyBuckets bucket (not
    // cumulative), +Inf last.
    std::array<uint64_t, kLatencyBuckets.size() + 1> latency{};
  };
  // Zeros for a version without a request yet.
  Counters CountersOf(const std::string& model, const std::string& version) const
      LOCKS_EXCLUDED(mu_);

  // One shadow version's comparison with the live answers so far (the
  // berth_shadow_* series): what a version's status shows.
  struct ShadowCounters {
    uint64_t agree = 0;
    uint64_t differ = 0;
    uint64_t failed = 0;
    double abs_difference_sum = 0;  // over float_elements
    uint64_t float_elements = 0;
    uint64_t duration_ns = 0;  // summed over every shadow request, failed ones too
  };
  // Zeros for a shadow without a request yet.
  ShadowCounters ShadowCountersOf(const std::string& model, const std::string& version) const
      LOCKS_EXCLUDED(mu_);

  // The statistics extension's view of the same counters.
  ModelStatistics Statistics(const std::string& name, const std::string& version) const override
      LOCKS_EXCLUDED(mu_);

 private:
  struct LatencyHistogram {
    std::array<std::atomic<uint64_t>, kLatencyBuckets.size() + 1> buckets{};  // +Inf last
    std::atomic<uint64_t> sum_ns{0};
    void Observe(std::chrono::nanoseconds duration);
    uint64_t Count() const;
  };
  // The compute phases, in the order of InferenceTimings.
  static constexpr std::array<const char*, 3> kPhases = {"input", "infer", "output"};
  // The executions of one batch size.
  struct BatchSeries {
    std::atomic<uint64_t> executions{0};
    std::array<std::atomic<uint64_t>, kPhases.size()> compute_ns{};
  };
  struct Series {
    std::atomic<uint64_t> success{0};
    // Indexed by Status::Code.
    std::array<std::atomic<uint64_t>, Status::kCodeCount> failure_by_code{};
    std::atomic<uint64_t> failure_ns{0};
    // Requests by door (Protocol), for berth_inference_requests_total.
    std::array<std::atomic<uint64_t>, kProtocolCount> success_by_protocol{};
    std::array<std::atomic<uint64_t>, kProtocolCount> failure_by_protocol{};
    // Successful requests only.
    LatencyHistogram latency;
    LatencyHistogram queue;
    std::array<LatencyHistogram, kPhases.size()> compute;
    // Per execution: rows, executions, and the batch size histogram.
    std::atomic<uint64_t> rows{0};
    std::atomic<uint64_t> executions{0};
    std::array<std::atomic<uint64_t>, kBatchSizeBuckets.size() + 1> batch_size_buckets{};
    // steady_clock nanoseconds of the last answer; 0: none yet.
    std::atomic<int64_t> last_inference_ns{0};
    // Keyed by batch size. Guarded by Metrics::mu_ like the series itself:
    // found under the shared lock, inserted under the exclusive one.
    std::map<int64_t, BatchSeries> batches;
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
  // Adds one request to `series`; `batch` is the counters of its execution's
  // batch size, null unless it counts the execution.
  static void Observe(Series& series, BatchSeries* batch, const Status& status,
                      const InferenceTimings& timings);

  mutable std::shared_mutex mu_;
  std::map<Key, std::unique_ptr<Series>> series_ GUARDED_BY(mu_);
  std::map<Key, std::unique_ptr<ShadowSeries>> shadow_series_ GUARDED_BY(mu_);
  std::atomic<uint64_t> unknown_model_failures_{0};
  std::array<std::atomic<uint64_t>, kProtocolCount> unknown_model_by_protocol_{};
};

}  // namespace berth
