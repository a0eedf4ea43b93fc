// The framing between the server and a Python worker process
// (backends/python/python_backend.h; the worker is python/src/berth/runtime/).
// Tensors travel as raw bytes, never as JSON. Everything is little-endian:
//
//   frame   = u32 body_length, body
//   body    = u8 kind, payload
//   READY   (worker -> server, once after loading): specs inputs, specs outputs
//   INFER   (server -> worker): strings output_names, tensors inputs
//   RESULT  (worker -> server): tensors outputs
//   ERROR   (worker -> server): u8 code, string message
//   specs   = u32 count, count x spec
//   spec    = string name, u8 datatype (core/datatype.h's DataType value),
//             u32 rank, rank x i64 dims
//   tensors = u32 count, count x (spec, u64 data_length, data)
//   data    = raw row-major elements; BYTES: per element u32 length, bytes
//   strings = u32 count, count x string;  string = u32 length, bytes
//
// Decoding checks every length against what is left of the body before it
// allocates: the worker runs user code and its bytes are not trusted.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/backend.h"
#include "core/status.h"
#include "core/tensor.h"

namespace berth::python {

enum class FrameKind : uint8_t { kReady = 1, kInfer = 2, kResult = 3, kError = 4 };

// The largest body either side sends or accepts.
constexpr uint32_t kMaxFrameBytes = 1u << 31;
// The most tensors, names or dimensions one frame may list.
constexpr uint32_t kMaxCount = 4096;

// Codes of an ERROR frame.
enum class WorkerError : uint8_t { kInvalidArgument = 1, kInternal = 2 };

// Each Encode* returns a whole frame, length prefix included; a body over
// kMaxFrameBytes is ResourceExhausted.
StatusOr<std::string> EncodeInfer(std::span<const Tensor> inputs,
                                  std::span<const std::string> output_names);
StatusOr<std::string> EncodeResult(std::span<const Tensor> outputs);
StatusOr<std::string> EncodeReady(const ModelSignature& signature);
std::string EncodeError(WorkerError code, std::string_view message);

// The kind of a body (the bytes after the length prefix).
StatusOr<FrameKind> KindOf(std::string_view body);

// Each Decode* reads a body of its kind; InvalidArgument names what is wrong.
Status DecodeInfer(std::string_view body, std::vector<Tensor>* inputs,
                   std::vector<std::string>* output_names);
Status DecodeResult(std::string_view body, std::vector<Tensor>* outputs);
Status DecodeReady(std::string_view body, ModelSignature* signature);
// The error as a Status: kInvalidArgument -> InvalidArgument, else Internal.
Status DecodeError(std::string_view body);

}  // namespace berth::python
