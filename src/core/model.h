// Model: one loaded version of one model, immutable once READY. Requests hold
// it through a shared_ptr for exactly their own duration, so a version that is
// swapped out or unloaded stays alive until its last in-flight request ends.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "core/memory_budget.h"
#include "core/model_config.h"
#include "core/scheduler.h"

namespace berth {

// The lifecycle of a model version, as the repository index reports it.
enum class ModelState { kLoading, kReady, kUnavailable, kUnloading };
const char* ModelStateName(ModelState state);

struct Model {
  std::string name;
  int64_t version = 0;
  std::string platform;       // e.g. "onnxruntime_onnx"
  ModelConfig config;
  ModelSignature signature;   // what clients see: config declarations reconciled with the file
  // Reading and compiling the artifact, then the warm-up (for the metrics).
  std::chrono::nanoseconds load_duration{0};
  // Requests between resolve and response on this version (InferenceService
  // keeps it; the metrics read it). Declared before the scheduler, which is
  // destroyed first and may still complete requests as it goes.
  mutable std::atomic<int64_t> in_flight{0};
  // Requests the dynamic batcher refused because its queue was full
  // (max_queue_size); the metrics read it.
  mutable std::atomic<uint64_t> queue_full{0};
  // What --memory-budget holds for this version (null when the version was
  // loaded without a budget). Declared before the backend so that it is
  // returned only once the session is gone.
  std::unique_ptr<MemoryBudget::Reservation> memory;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Scheduler> scheduler;

  ~Model();
};

}  // namespace berth
