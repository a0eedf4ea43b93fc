// InferenceRequest / InferenceResponse: the protocol-neutral form that every
// front end (REST v2, gRPC v2, TF-Serving, cloud routes) decodes into and
// encodes from. Nothing here knows about JSON or protobuf.
#pragma once

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
};

struct InferenceResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  Parameters parameters;
  std::vector<Tensor> outputs;
  // Measured by the scheduler and the backend; not sent to the client.
  InferenceTimings timings;
};

}  // namespace berth
