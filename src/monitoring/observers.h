// Observers: hands each inference event to the counting observer (the
// metrics), the sampling one (the drift monitor) and the one that keeps
// predictions for feedback (monitoring/feedback/), so that
// InferenceService keeps one observer pointer. No pointer is owned; any
// may be null. Thread-safe as the observers are.
#pragma once

#include "core/inference_service.h"

namespace berth {

class Observers final : public InferenceObserver {
 public:
  Observers(InferenceObserver* counts, InferenceObserver* samples,
            InferenceObserver* predictions = nullptr)
      : counts_(counts), samples_(samples), predictions_(predictions) {}

  void OnInferenceDone(const std::string& model, const std::string& version, const Status& status,
                       const InferenceTimings& timings) override {
    if (counts_ != nullptr) counts_->OnInferenceDone(model, version, status, timings);
  }
  void OnShadowDone(const std::string& model, const std::string& shadow_version,
                    const Status& status, const ShadowComparison* comparison,
                    std::chrono::nanoseconds duration) override {
    if (counts_ != nullptr) {
      counts_->OnShadowDone(model, shadow_version, status, comparison, duration);
    }
  }
  std::shared_ptr<InferenceSample> OnSampledRequest(const Model& model,
                                                    const InferenceRequest& request) override {
    return samples_ != nullptr ? samples_->OnSampledRequest(model, request) : nullptr;
  }
  void OnSampledResponse(const Model& model, std::shared_ptr<InferenceSample> sample,
                         const InferenceResponse& response) override {
    if (samples_ != nullptr) samples_->OnSampledResponse(model, std::move(sample), response);
  }
  void OnPrediction(const Model& model, const InferenceResponse& response) override {
    if (predictions_ != nullptr) predictions_->OnPrediction(model, response);
  }

 private:
  InferenceObserver* counts_;
  InferenceObserver* samples_;
  InferenceObserver* predictions_;
};

}  // namespace berth
