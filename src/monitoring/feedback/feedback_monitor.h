// FeedbackMonitor: accuracy from ground truth (docs/monitoring.md). Keeps
// each prediction of a version whose config has `monitoring: feedback:` in
// the registry store under its request id and row, joins the truths that
// clients send later (POST /v2/models/{m}/feedback), and computes rolling
// quality metrics per version over the newest joined predictions, next to
// the metrics the version was registered with.
//
// The request thread does little: one shared-lock map lookup for the
// version's plan (which outputs hold the prediction), then it copies each
// row's predicted label or value into a per-thread shard (a mutex only that
// thread and the flusher take). A background thread writes the shards to
// the store in one transaction a second and applies the retention once a
// minute; feedback flushes first, so it finds every prediction answered
// before it. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/inference_service.h"
#include "core/model_manager.h"
#include "core/status.h"
#include "core/thread_annotations.h"
#include "monitoring/feedback/feedback_stats.h"
#include "registry/registry_store.h"

namespace berth::feedback {

// How many feedback items met each fate (FeedbackOutcome).
struct FeedbackCounts {
  int64_t joined = 0;
  int64_t unknown = 0;
  int64_t duplicate = 0;
  int64_t late = 0;
};

// A version's rolling metrics (GET /v2/models/{m}/versions/{v}/accuracy).
struct AccuracyReport {
  std::string task;          // "classification" or "regression"
  int64_t count = 0;         // joined predictions in the window
  int64_t window_limit = 0;  // monitoring.feedback.window_count
  int64_t start_ms = 0;      // when the window's oldest and newest truths came; 0: none
  int64_t end_ms = 0;
  MetricValues metrics;     // computed from the window
  MetricValues registered;  // the version's metadata.metrics, by name
  MetricValues drop;        // Drop() for each metric in both
  FeedbackCounts feedback;  // the model's feedback since the server started
};

class FeedbackMonitor final : public InferenceObserver {
 public:
  // Neither pointer is owned; `store` may be null (a server without a
  // registry store keeps no predictions: feedback is refused).
  FeedbackMonitor(RegistryStore* store, const ModelManager* models);
  ~FeedbackMonitor() override;
  FeedbackMonitor(const FeedbackMonitor&) = delete;
  FeedbackMonitor& operator=(const FeedbackMonitor&) = delete;

  // Starts the flushing thread (Stop, or the destructor, ends it after a
  // last flush).
  void Start() LOCKS_EXCLUDED(thread_mu_);
  void Stop() LOCKS_EXCLUDED(thread_mu_);

  void OnInferenceDone(const std::string&, const std::string&, const Status&,
                       const InferenceTimings&) override {}
  void OnPrediction(const Model& model, const InferenceResponse& response) override
      LOCKS_EXCLUDED(plans_mu_);

  // Writes the predictions answered so far to the store.
  void Flush() LOCKS_EXCLUDED(flush_mu_);

  // Joins `items` with `model`'s predictions (with `version`: only that
  // version's), counts what became of them and adds the joined ones to
  // their versions' windows. FailedPrecondition if the model's serving
  // version does not keep predictions (no monitoring.feedback) or there is
  // no store.
  StatusOr<FeedbackCounts> AddFeedback(const Model& model, std::optional<int64_t> version,
                                       const std::vector<FeedbackItem>& items) LOCKS_EXCLUDED(mu_);

  // The version's rolling metrics; FailedPrecondition as AddFeedback.
  StatusOr<AccuracyReport> Report(const Model& model) LOCKS_EXCLUDED(mu_);

  // For alert rules: how much worse `metric` of the version's window is than
  // the metric it was registered with (feedback_stats.h's Drop); nullopt
  // when either is missing (no feedback yet, no such registered metric, a
  // version that is not loaded or keeps no predictions).
  std::optional<double> AccuracyDrop(const std::string& model, int64_t version,
                                     const std::string& metric) LOCKS_EXCLUDED(mu_);
  // The version's current value of `metric`; nullopt as above.
  std::optional<double> Accuracy(const std::string& model, int64_t version,
                                 const std::string& metric) LOCKS_EXCLUDED(mu_);

  // Gauges per model, version and metric, and the feedback counters.
  std::string RenderPrometheus() LOCKS_EXCLUDED(mu_);

 private:
  using Key = std::pair<std::string, int64_t>;
  // Where a version's prediction is in its response.
  struct Plan {
    FeedbackConfig config;
    bool regression = false;
    std::string label_output;
    std::string score_output;  // empty: none
    int64_t score_column = 1;
  };
  struct Shard {
    std::mutex mu;
    std::vector<PredictionRecord> pending GUARDED_BY(mu);
  };
  struct Window {
    int64_t read_ms = 0;                  // when read from the store; 0: to read
    std::deque<JoinedPrediction> joined;  // oldest first
    bool registered_read = false;
    MetricValues registered;
  };
  static constexpr size_t kShards = 16;
  // Predictions waiting for the flusher beyond this many are dropped (and
  // counted): a store that cannot keep up must not grow the heap.
  static constexpr int64_t kMaxPending = 200'000;

  std::shared_ptr<const Plan> PlanFor(const Model& model) LOCKS_EXCLUDED(plans_mu_);
  static std::shared_ptr<const Plan> BuildPlan(const Model& model);
  // The version's window: read from the store on first use, after a join
  // here, and when older than a few seconds (another replica may have
  // joined); pruned of predictions past their retention.
  StatusOr<Window*> WindowFor(const Model& model, const Plan& plan) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  StatusOr<AccuracyReport> ReportLocked(const Model& model) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<double> Lookup(const std::string& model, int64_t version, const std::string& metric,
                               bool drop) LOCKS_EXCLUDED(mu_);
  // Applies each model's retention (ExpirePredictions).
  void Expire();
  void Loop() LOCKS_EXCLUDED(thread_mu_);

  RegistryStore* const store_;
  const ModelManager* const models_;
  std::shared_mutex plans_mu_;
  std::map<Key, std::shared_ptr<const Plan>> plans_ GUARDED_BY(plans_mu_);
  std::array<Shard, kShards> shards_;
  std::atomic<int64_t> pending_{0};
  std::atomic<int64_t> written_{0};
  std::atomic<int64_t> lost_{0};
  // Held across a whole flush, so that feedback's Flush waits for the
  // background's.
  std::mutex flush_mu_;
  bool failing_ GUARDED_BY(flush_mu_) = false;  // the last write failed (logged once)
  // Windows and counts; held across a join and the windows' store reads.
  std::mutex mu_;
  std::map<Key, Window> windows_ GUARDED_BY(mu_);
  std::map<std::string, FeedbackCounts> counts_ GUARDED_BY(mu_);
  std::mutex thread_mu_;
  std::condition_variable cv_;
  bool stop_ GUARDED_BY(thread_mu_) = false;
  std::thread thread_;
};

}  // namespace berth::feedback
