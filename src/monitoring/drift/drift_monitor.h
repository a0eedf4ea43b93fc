// DriftMonitor: reads the sampled requests' tensors (InferenceObserver's
// sampling) and keeps, per model version, a sliding window of each
// baseline feature's values and of the prediction, compared on demand with
// the version's baseline profile (drift_window.h, drift_stats.h).
//
// The request thread does little: one shared-lock map lookup for the
// version's plan, then it copies the sampled rows' feature values into a
// per-thread shard (a mutex that only that thread and the merger take). A
// background thread merges the shards into the windows every 200 ms; a
// report merges first, so it sees every sample answered before it.
// Thread-safe.
#pragma once

#include <array>
#include <condition_variable>
#include <functional>
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
#include "monitoring/drift/baseline.h"
#include "monitoring/drift/drift_window.h"

namespace berth::drift {

// A version's baseline and where it came from ("store" or "metadata").
struct SourcedBaseline {
  BaselineProfile profile;
  std::string source;
};

class DriftMonitor final : public InferenceObserver {
 public:
  // Finds a version's baseline (may read the registry store): nullopt when
  // it has none. Called once per version, on the first sampled request's
  // thread, and again after SetBaseline.
  using BaselineLookup =
      std::function<StatusOr<std::optional<SourcedBaseline>>(const std::string&, int64_t)>;

  explicit DriftMonitor(BaselineLookup lookup);
  ~DriftMonitor() override;
  DriftMonitor(const DriftMonitor&) = delete;
  DriftMonitor& operator=(const DriftMonitor&) = delete;

  // Starts the merging thread (Stop, or the destructor, ends it).
  void Start() LOCKS_EXCLUDED(thread_mu_);
  void Stop() LOCKS_EXCLUDED(thread_mu_);

  void OnInferenceDone(const std::string&, const std::string&, const Status&,
                       const InferenceTimings&) override {}
  std::shared_ptr<InferenceSample> OnSampledRequest(const Model& model,
                                                    const InferenceRequest& request) override
      LOCKS_EXCLUDED(plans_mu_);
  void OnSampledResponse(const Model& model, std::shared_ptr<InferenceSample> sample,
                         const InferenceResponse& response) override;

  // The drift of `model`'s window against its baseline ("no_baseline" when
  // it has none; "too_small" below its min_window).
  DriftReport Report(const Model& model) LOCKS_EXCLUDED(plans_mu_, windows_mu_);
  // The version's baseline, nullopt when it has none.
  std::optional<SourcedBaseline> Baseline(const Model& model) LOCKS_EXCLUDED(plans_mu_) {
    return PlanFor(model)->baseline;
  }
  // A baseline profile made of the version's current window, features as
  // its plan names them (the baseline's, else one per input column);
  // FailedPrecondition if the window is empty.
  StatusOr<BaselineProfile> ProfileWindow(const Model& model)
      LOCKS_EXCLUDED(plans_mu_, windows_mu_);
  // The version's baseline changed (set or cleared in the store): its plan
  // and window start over.
  void Reset(const std::string& model, int64_t version) LOCKS_EXCLUDED(plans_mu_, windows_mu_);

  // Gauges per model, version and feature, for the versions `models` has.
  std::string RenderPrometheus(const ModelManager& models) LOCKS_EXCLUDED(plans_mu_, windows_mu_);

  // Merges the shards into the windows now: when it returns, every sample
  // answered before the call is in its window (a merge the background
  // thread had started included).
  void Flush() LOCKS_EXCLUDED(flush_mu_, windows_mu_);

 private:
  using Key = std::pair<std::string, int64_t>;
  // What to read of a version's requests: its baseline's features (or,
  // without one, every input column), then its prediction.
  struct Plan {
    std::optional<SourcedBaseline> baseline;
    std::vector<FeatureSource> columns;
    bool has_prediction = false;
    MonitoringConfig config;
  };
  struct Sample;
  struct Pending {
    Key key;
    std::shared_ptr<const Plan> plan;
    SampledRows rows;
  };
  struct Shard {
    std::mutex mu;
    std::vector<Pending> pending GUARDED_BY(mu);
  };
  struct VersionWindow {
    std::shared_ptr<const Plan> plan;
    Window window;
  };
  static constexpr size_t kShards = 16;

  std::shared_ptr<const Plan> PlanFor(const Model& model) LOCKS_EXCLUDED(plans_mu_);
  static std::shared_ptr<const Plan> BuildPlan(const Model& model,
                                               std::optional<SourcedBaseline> baseline);
  // The report of one window, under windows_mu_.
  DriftReport ReportLocked(const Plan& plan, VersionWindow* w, int64_t now_ms)
      EXCLUSIVE_LOCKS_REQUIRED(windows_mu_);
  void Loop() LOCKS_EXCLUDED(thread_mu_);

  BaselineLookup lookup_;
  std::shared_mutex plans_mu_;
  std::map<Key, std::shared_ptr<const Plan>> plans_ GUARDED_BY(plans_mu_);
  // Serialises plan building, so that a version's baseline is looked up
  // once however many first requests race.
  std::mutex build_mu_;
  // Held across a whole merge (taking the shards, then adding to the
  // windows), so that a report's Flush waits for the background's.
  std::mutex flush_mu_;
  std::array<Shard, kShards> shards_;
  std::mutex windows_mu_;
  std::map<Key, VersionWindow> windows_ GUARDED_BY(windows_mu_);
  std::mutex thread_mu_;
  std::condition_variable cv_;
  bool stop_ GUARDED_BY(thread_mu_) = false;
  std::thread thread_;
};

}  // namespace berth::drift
