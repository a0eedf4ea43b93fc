// The Python runtime: `backend: python` serves a model that ONNX cannot
// express (a custom transformer, arbitrary Python, an MLflow pyfunc) from
// worker processes the server manages, as Triton's Python backend does.
//
// Each loaded version owns `instance_count` workers (its concurrency limit;
// a request waits for a free one). A worker that crashes is replaced; one
// past `python.timeout_ms` is killed and replaced and its request fails
// DEADLINE_EXCEEDED. Tensors cross as raw bytes (worker_frame.h). Unloading
// the version stops its workers. See docs/python.md.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "backends/backend.h"
#include "core/thread_annotations.h"

namespace berth {

// Counts of replaced workers, for /metrics:
// berth_python_worker_restarts_total{model, reason} with reason crash (died
// during a request), timeout (killed at python.timeout_ms) or idle (died
// between requests). Thread-safe.
class PythonWorkerStats {
 public:
  void CountRestart(const std::string& model, const std::string& reason) LOCKS_EXCLUDED(mu_);
  // The Prometheus exposition text; empty until a worker was replaced.
  std::string RenderPrometheus() const LOCKS_EXCLUDED(mu_);

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> restarts_ GUARDED_BY(mu_);
};

struct PythonFactoryOptions {
  // --python: the interpreter that runs `-m berth.runtime.worker`, unless a
  // model's `python.interpreter` names another.
  std::string interpreter = "python3";
  // Where restarts are counted (not owned; may be null).
  PythonWorkerStats* stats = nullptr;
};

std::unique_ptr<BackendFactory> CreatePythonFactory(PythonFactoryOptions options);

}  // namespace berth
