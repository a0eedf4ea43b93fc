// InferenceService: the one inference path that every front end calls.
// Resolves the model version, validates the request, hands it to the model's
// scheduler. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/inference_request.h"
#include "core/model_manager.h"
#include "core/scheduler.h"

namespace berth {

// Told of every finished inference request (monitoring/metrics.h is one).
// Called on the thread that completes the request; must be thread-safe.
class InferenceObserver {
 public:
  virtual ~InferenceObserver() = default;
  // `model` is empty when the request named a model the server does not
  // know; `version` is empty when no version was resolved.
  virtual void OnInferenceDone(const std::string& model, const std::string& version,
                               const Status& status, std::chrono::nanoseconds duration) = 0;
};

class InferenceService {
 public:
  // `observer` may be null; neither pointer is owned.
  InferenceService(const ModelManager* models, InferenceObserver* observer)
      : models_(models), observer_(observer) {}

  // Resolves `request->model_name` / `model_version` (ModelManager::Resolve),
  // then runs the request on that version. Calls `done` exactly once,
  // possibly before returning, possibly on another thread.
  void Infer(std::unique_ptr<InferenceRequest> request, InferCallback done) const;

  // Runs the request on a version the caller has already resolved: the doors
  // that decode against a model's signature (rows, TF Serving, the cloud
  // routes) resolve once, decode, and hand the same handle here. Same
  // contract for `done`.
  void Infer(ModelHandle model, std::unique_ptr<InferenceRequest> request,
             InferCallback done) const;

  const ModelManager& models() const { return *models_; }

 private:
  const ModelManager* models_;
  InferenceObserver* observer_;
};

}  // namespace berth
