// The ONNX Runtime backend: runs model.onnx files, including the ai.onnx.ml
// operators that skl2onnx and onnxmltools emit.
#pragma once

#include <memory>

#include "backends/backend.h"

namespace berth {

// Creates the backend factory for `backend: onnx`. One process-wide
// Ort::Env lives inside it; create the factory once and share it.
std::unique_ptr<BackendFactory> CreateOnnxRuntimeFactory();

}  // namespace berth
