// InferenceRequest / InferenceResponse: the protocol-neutral form that every
// front end (REST v2, gRPC v2, TF-Serving, cloud routes) decodes into and
// encodes from. Nothing here knows about JSON or protobuf.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/inference_timings.h"
#include "core/tensor.h"

namespace berth {

using ParameterValue = std::variant<bool, int64_t, double, std::string>;
using Parameters = std::map<std::string, ParameterValue>;

// Where an input's data is read from, or an output's written to, under the
// system shared-memory extension (core/shared_memory.h): `byte_size` bytes
// from `offset` within the registered region named `region`.
struct SharedMemoryRef {
  std::string region;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

struct RequestedOutput {
  std::string name;
  Parameters parameters;  // front-end options, e.g. binary_data
};

struct InferenceRequest {
  std::string model_name;
  std::string model_version;  // a version, an alias, or empty: the model's default
  std::string id;             // echoed in the response
  Protocol protocol = Protocol::kUnknown;  // set by the front end that decoded it
  Parameters parameters;
  std::vector<Tensor> inputs;
  std::vector<RequestedOutput> outputs;  // empty: every output
  // When the answer stops being useful: a request still queued then is
  // answered DEADLINE_EXCEEDED without running. A front end sets it from the
  // protocol's own deadline (gRPC's); InferenceService::Infer lowers it to
  // the server's --request-timeout and the request's `timeout` parameter.
  // max(): none.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // The inputs whose data is in shared memory, by name: the decoders leave
  // such an input's tensor without data, and InferenceService reads it from
  // the region (core/shared_memory_io.h) before the request is validated.
  std::map<std::string, SharedMemoryRef> shared_memory_inputs;
};

struct InferenceResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  Parameters parameters;
  std::vector<Tensor> outputs;
  // The outputs written to shared memory, by name, with the bytes written:
  // their tensors hold no data, and the encoders send these parameters
  // (shared_memory_region, shared_memory_byte_size) in its place.
  std::map<std::string, SharedMemoryRef> shared_memory_outputs;
  // Measured by the scheduler and the backend; not sent to the client.
  InferenceTimings timings;
};

}  // namespace berth
