// InferenceService: the one inference path that every front end calls.
// Resolves the model version, validates the request, hands it to the model's
// scheduler. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/inference_request.h"
#include "core/inference_timings.h"
#include "core/model_manager.h"
#include "core/scheduler.h"
#include "core/shadow.h"

namespace berth {

// Told of every finished inference request (monitoring/metrics.h is one).
// Called on the thread that completes the request; must be thread-safe.
class InferenceObserver {
 public:
  virtual ~InferenceObserver() = default;
  // `model` is empty when the request named a model the server does not
  // know; `version` is empty when no version was resolved. `timings` holds
  // the request's total and, when it succeeded, its queue and compute phases
  // and its execution (core/inference_timings.h).
  virtual void OnInferenceDone(const std::string& model, const std::string& version,
                               const Status& status, const InferenceTimings& timings) = 0;
  // A shadow request finished: `comparison` is null when it failed or the
  // live request did (`status` says which), `duration` is the shadow's own.
  virtual void OnShadowDone(const std::string& model, const std::string& shadow_version,
                            const Status& status, const ShadowComparison* comparison,
                            std::chrono::nanoseconds duration) {}
};

class InferenceService {
 public:
  // `observer` may be null; neither pointer is owned.
  InferenceService(const ModelManager* models, InferenceObserver* observer)
      : models_(models), observer_(observer) {}

  // Resolves `request->model_name` / `model_version` (ModelManager::Resolve,
  // with `keys`, the request's headers or metadata, and its inputs, for a
  // split's routing key; may be null, and is read only before Infer
  // returns), then runs the
  // request on that version. Calls `done` exactly once, possibly before
  // returning, possibly on another thread.
  void Infer(std::unique_ptr<InferenceRequest> request, InferCallback done,
             const RoutingKeys* keys = nullptr) const;

  // The doors that decode against a model's signature (rows, TF Serving,
  // the cloud routes) resolve once (`selector`, `keys`), decode, and hand
  // the handle that decoded the request here; it runs on that handle. One
  // exception: when the model splits by an input's value ("input:NAME",
  // ModelManager::SplitsByInput), the version is picked again now that the
  // input is decoded, as the v2 doors pick it, so that a key reaches the
  // same version at every door (a version whose signature differs is
  // refused by the request's validation). Same contract for `done`.
  void Infer(ModelHandle decoded_with, std::string_view selector, const RoutingKeys* keys,
             std::unique_ptr<InferenceRequest> request, InferCallback done) const;

  const ModelManager& models() const { return *models_; }

 private:
  // Runs the request on the version resolved for it.
  void Run(ModelHandle model, std::unique_ptr<InferenceRequest> request, InferCallback done) const;

  // Runs a copy of `request` on the model's shadow when it has one and the
  // draw says so, and arranges for the two answers to be compared; returns
  // `done` wrapped to take part in the comparison. The shadow runs after the
  // live request was handed over, so it never delays the live answer.
  InferCallback MaybeShadow(const ModelHandle& live, const InferenceRequest& request,
                            InferCallback done, std::function<void()>* start_shadow) const;

  const ModelManager* models_;
  InferenceObserver* observer_;
};

}  // namespace berth
