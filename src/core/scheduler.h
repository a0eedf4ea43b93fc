// Scheduler: what sits between a validated request and a model's backend.
//
// The front ends never call a backend directly; they hand a request to the
// model's scheduler and get the response through a callback, on whatever
// thread the scheduler completes it. Today's scheduler runs the request
// inline; a dynamic batcher or an instance pool implements the same interface.
#pragma once

#include <chrono>
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

  // Runs `request` on `model` and calls `done` exactly once, before the
  // scheduler is destroyed (so before its Model is). The request has been
  // validated against the model's signature. A request whose deadline
  // (InferenceRequest::deadline) passes before it starts to run is answered
  // DeadlineExceeded(*model) without running, as soon as the deadline
  // passes; one already running finishes and is answered with its result.
  virtual void Enqueue(std::shared_ptr<const Model> model,
                       std::unique_ptr<InferenceRequest> request, InferCallback done) = 0;

  // The server is shutting down: from now on Enqueue refuses every request
  // with UNAVAILABLE, and whatever the scheduler holds runs at once instead
  // of waiting for more work (a dynamic batcher's max_queue_delay). Returns
  // without waiting for the held requests; they complete on the scheduler's
  // threads as usual. Thread-safe, idempotent, irreversible.
  virtual void Drain() = 0;
};

// The status a draining scheduler answers new requests with.
Status ShuttingDown();
// The status of a request whose deadline passed before it ran on `model`.
Status DeadlineExceeded(const Model& model);

// Runs each request on the calling thread, one backend call per request.
std::unique_ptr<Scheduler> CreateDirectScheduler();

// Runs `request` against `model`'s backend and builds the response. The
// building block every scheduler uses. The response's timings hold the
// execution's phases counted from `start` (a batching scheduler passes the
// moment it began to assemble the batch) to the backend's return, its batch
// size, and counts_execution; the caller sets `queue` and adds what it does
// after (splitting a batch) to compute_output.
StatusOr<InferenceResponse> ExecuteRequest(
    const Model& model, const InferenceRequest& request,
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now());

}  // namespace berth
