// InferenceService: the one inference path that every front end calls.
// Resolves the model version, validates the request, hands it to the model's
// scheduler. Thread-safe.
#pragma once

#include <memory>

#include "core/inference_request.h"
#include "core/model_manager.h"
#include "core/scheduler.h"

namespace berth {

class InferenceService {
 public:
  explicit InferenceService(const ModelManager* models) : models_(models) {}

  // Calls `done` exactly once, possibly before returning, possibly on another
  // thread.
  void Infer(std::unique_ptr<InferenceRequest> request, InferCallback done) const;

  const ModelManager& models() const { return *models_; }

 private:
  const ModelManager* models_;  // not owned
};

}  // namespace berth
