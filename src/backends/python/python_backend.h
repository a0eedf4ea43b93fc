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

#include <memory>
#include <string>

#include "backends/backend.h"

namespace berth {

struct PythonFactoryOptions {
  // --python: the interpreter that runs `-m berth.runtime.worker`, unless a
  // model's `python.interpreter` names another.
  std::string interpreter = "python3";
};

std::unique_ptr<BackendFactory> CreatePythonFactory(PythonFactoryOptions options);

}  // namespace berth
