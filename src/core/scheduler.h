// Scheduler: what sits between a validated request and a model's backend.
//
// The front ends never call a backend directly; they hand a request to the
// model's scheduler and get the response through a callback, on whatever
// thread the scheduler completes it. Today's scheduler runs the request
// inline; a dynamic batcher or an instance pool implements the same interface.
#pragma once

#include <functional>
#include <memory>

#include "core/inference_request.h"
#include "core/status.h"

namespace berth {

struct Model;

using InferCallback = std::function<void(StatusOr<InferenceResponse>)>;

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Runs `request` on `model` and calls `done` exactly once. The request has
  // been validated against the model's signature.
  virtual void Enqueue(std::shared_ptr<const Model> model,
                       std::unique_ptr<InferenceRequest> request, InferCallback done) = 0;
};

// Runs each request on the calling thread, one backend call per request.
std::unique_ptr<Scheduler> CreateDirectScheduler();

// Runs `request` against `model`'s backend and builds the response. The
// building block every scheduler uses.
StatusOr<InferenceResponse> ExecuteRequest(const Model& model, const InferenceRequest& request);

}  // namespace berth
