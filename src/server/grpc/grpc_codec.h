// Protobuf encoding of the Open Inference Protocol (KServe v2) gRPC messages:
// ModelInferRequest -> InferenceRequest, InferenceResponse ->
// ModelInferResponse, and the metadata replies. Pure functions of their
// arguments: no I/O, no server state, thread-safe.
//
// Tensor data travels in one of two forms. Typed: each input's
// `contents.<type>_contents`. Raw: `raw_input_contents[i]` holds input i's
// little-endian bytes, a BYTES element being a 4-byte little-endian length
// followed by that many bytes. A request uses one form for all its inputs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/inference_request.h"
#include "core/model.h"
#include "core/model_manager.h"
#include "core/model_metadata.h"
#include "core/model_statistics.h"
#include "core/status.h"
#include "server/grpc/grpc_service.pb.h"

// Inside namespace berth, `grpc` names the gRPC library; the front end lives
// in berth::rpc so the two never collide.
namespace berth::rpc {

// Decodes an infer request, model name and version included. InvalidArgument
// naming the input for: an empty model name; typed contents in the wrong
// field or of the wrong count, a value out of the datatype's range, raw
// contents mixed with typed contents or not one per input; and, with the
// messages of the REST doors, an unknown datatype, a negative dimension
// (core/request_validator.h), raw contents that do not fill the shape, a BOOL
// byte other than 0 or 1, BYTES length prefixes that do not frame exactly the
// element count (core/raw_tensor.h), a known parameter of the wrong type
// (CheckKnownParameter), malformed shared_memory_* parameters
// (core/shared_memory_io.h). An input in shared memory has no entry in
// raw_input_contents; its tensor is left without data, named in
// shared_memory_inputs, for the core to read.
StatusOr<std::unique_ptr<InferenceRequest>> DecodeInferRequest(
    const inference::ModelInferRequest& request);

// Encodes `response` into `out` (which should be empty), every output's data
// in raw_output_contents (BYTES elements with their 4-byte little-endian
// length prefixes), whatever form the request used: what Triton answers, what
// clients built on Triton's protos read, and the cheapest to encode.
void EncodeInferResponse(const InferenceResponse& response, inference::ModelInferResponse* out);

void EncodeModelMetadata(const ModelMetadata& metadata, inference::ModelMetadataResponse* out);

// One entry of the response per entry of `index`.
void EncodeRepositoryIndex(const std::vector<IndexEntry>& index,
                           inference::RepositoryIndexResponse* out);

// One entry of the response per entry of `stats`.
void EncodeModelStatistics(const std::vector<ModelStatistics>& stats,
                           inference::ModelStatisticsResponse* out);

}  // namespace berth::rpc
