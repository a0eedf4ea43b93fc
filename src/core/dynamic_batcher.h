// DynamicBatcher: a Scheduler that gathers requests for one model version
// into larger batches, the way Triton's dynamic batcher does.
//
// Requests wait in a bounded queue. A worker (one per model instance) takes
// the oldest request and joins to it every queued request that is compatible
// (same inputs, datatypes, non-batch dimensions and requested outputs) while
// the sum of their batch sizes stays within max_batch_size. It runs the batch
// at once when it reaches max_batch_size or a preferred size, or when the
// oldest request has waited max_queue_delay; otherwise it waits for more.
// One backend call serves the whole batch; outputs are split back by rows.
//
// A request that finds the queue at max_queue_size is refused UNAVAILABLE
// (503 with Retry-After over REST) and counted in Model::queue_full. A queued
// request whose deadline (InferenceRequest::deadline) passes is taken out of
// the queue and answered DEADLINE_EXCEEDED at once by a reaper thread, which
// the first request with a deadline starts; it never runs.
//
// Lifetime: owned by its Model, which it points to. Destroying it stops
// intake, finishes every queued request, then joins the workers, so a model
// version that is unloaded or swapped never drops an accepted request.
// Drain() (server shutdown) runs the queue at once without waiting out
// max_queue_delay, and refuses new requests with UNAVAILABLE.
#pragma once

#include <memory>

#include "core/model_config.h"
#include "core/scheduler.h"

namespace berth {

struct Model;

// `model` must outlive the scheduler (the Model owns it). Requires
// model->config.max_batch_size > 0.
std::unique_ptr<Scheduler> CreateDynamicBatcher(const Model* model);

}  // namespace berth
