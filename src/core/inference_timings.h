// Where one inference request spent its time, measured once in the core and
// read by every view of it: the statistics extension (core/model_statistics.h)
// and the Prometheus metrics (monitoring/metrics.h) sum the same values.
//
//   resolve ─ queue ─┬─ compute_input ─ compute_infer ─ compute_output ─┬─ response
//                    └──────────── one execution (a batch) ─────────────┘
//   └──────────────────────────────── total ───────────────────────────────┘
//
// Plain values, no allocation: they travel on the InferenceResponse from the
// scheduler to InferenceService, which adds the total and hands them to the
// InferenceObserver.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace berth {

// The door a request came in by: the metrics' `protocol` label. A small
// fixed set set by each front end, never a value a request controls.
enum class Protocol : uint8_t {
  kUnknown = 0,  // a caller inside the process (warm-up, tests)
  kRest,         // KServe v2 REST, JSON or binary tensors
  kGrpc,         // KServe v2 gRPC
  kTfServing,    // TensorFlow Serving REST
  kRows,         // Berth's infer_rows
  kSageMaker,
  kVertex,
  kAzure,
};
inline constexpr size_t kProtocolCount = 8;

// "rest", "grpc", ...: the label's values.
constexpr const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kUnknown: return "internal";
    case Protocol::kRest: return "rest";
    case Protocol::kGrpc: return "grpc";
    case Protocol::kTfServing: return "tfserving";
    case Protocol::kRows: return "rows";
    case Protocol::kSageMaker: return "sagemaker";
    case Protocol::kVertex: return "vertex";
    case Protocol::kAzure: return "azure";
  }
  return "internal";
}

// What a backend measures of one Backend::Execute call: the moments its
// engine inputs were ready and its engine run returned. The caller takes the
// start and the end; a backend that cannot tell its phases apart leaves both
// unset, and the whole call counts as compute_infer.
struct BackendTimings {
  std::chrono::steady_clock::time_point inputs_ready;
  std::chrono::steady_clock::time_point engine_done;
};

// The timings of one request that ran, as Triton's statistics define them.
// Durations of a failed request are zero but for `total`.
struct InferenceTimings {
  // Enqueued to the start of its execution: the dynamic batcher's wait; zero
  // under the direct scheduler, which has no queue.
  std::chrono::nanoseconds queue{0};
  // The execution's phases, shared by every request of a batch:
  // assembling the engine's inputs (with a batch's concatenation), the
  // engine run, and turning its outputs into responses (with a batch's
  // split).
  std::chrono::nanoseconds compute_input{0};
  std::chrono::nanoseconds compute_infer{0};
  std::chrono::nanoseconds compute_output{0};
  // Resolved to answered (set by InferenceService).
  std::chrono::nanoseconds total{0};
  // When the answer came (set by InferenceService).
  std::chrono::steady_clock::time_point finished;
  // Rows of the execution the request ran in (1 for a model without a batch
  // dimension, max_batch_size 0).
  int64_t batch_size = 0;
  // Set on exactly one request of each execution, so that a batch of N
  // requests counts as one execution of batch_size rows.
  bool counts_execution = false;
  // The request's door (set by InferenceService from the request).
  Protocol protocol = Protocol::kUnknown;
};

}  // namespace berth
