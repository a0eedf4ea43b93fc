// JSON encoding of the Open Inference Protocol (KServe v2) REST messages.
#pragma once

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

namespace berth::http {

// Parses an infer request. `json` is the JSON document; `binary` holds the
// bytes that follow it under the binary tensor extension (empty otherwise):
// inputs with a `binary_data_size` parameter take their data from it, in
// order, and every byte must be claimed. The model name and version come from
// the URL and are not set here. InvalidArgument with the position for
// malformed JSON, and for a key repeated in any object.
//
// The document is read as a stream (no tree): each input's `data` is written
// into its tensor as it is read, so peak memory is about the body plus the
// tensors. `data` is one flat list or lists nested exactly as the shape
// (JsonTensorBuilder::Nesting::kMatchShape); the members of an input may come
// in any order. `binary_data` and `binary_data_output` parameters must be
// booleans and `classification` a non-negative integer, in the request's and
// each output's parameters.
StatusOr<std::unique_ptr<InferenceRequest>> ParseV2InferRequest(std::string_view json,
                                                                 std::string_view binary = {});

// Which outputs a request wants as binary data (`binary_data: true` on the
// output, or `binary_data_output: true` on the request).
struct BinaryOutputs {
  bool all = false;
  std::vector<std::string> names;
  bool Wants(const std::string& name) const;
  bool any() const { return all || !names.empty(); }
};
BinaryOutputs BinaryOutputsOf(const InferenceRequest& request);

// The encoded response: `body` is the JSON document followed by the binary
// outputs; `json_size` is the JSON part's length (the value of the
// Inference-Header-Content-Length header) or body.size() when nothing is binary.
// FailedPrecondition (400) if an output to be written as JSON `data` holds
// a BYTES element that is not valid UTF-8, which a JSON string cannot
// carry: the message tells the client to ask for it as binary data.
struct EncodedV2Response {
  std::string body;
  size_t json_size = 0;
};
StatusOr<EncodedV2Response> WriteV2InferResponse(const InferenceResponse& response,
                                                 const BinaryOutputs& binary = {});

// {"name", "versions", "platform", "inputs", "outputs"}.
std::string WriteV2ModelMetadata(const ModelMetadata& metadata);

// {"name": ..., "ready": ...} and, when not ready, "error": the reason.
std::string WriteV2ModelReady(std::string_view name, bool ready, std::string_view reason);

std::string WriteV2ServerMetadata(std::string_view name, std::string_view version,
                                  const std::vector<std::string>& extensions);

// [{"name", "version", "state", "reason"}], one per entry of `index`;
// "version" is left out for an entry without one.
std::string WriteV2RepositoryIndex(const std::vector<IndexEntry>& index);

// Triton's statistics extension: {"model_stats": [{"name", "version",
// "last_inference", "inference_count", "execution_count", "inference_stats":
// {"success", "fail", "queue", "compute_input", "compute_infer",
// "compute_output", "cache_hit", "cache_miss"}, "batch_stats": [{"batch_size",
// "compute_input", "compute_infer", "compute_output"}]}]}, each duration
// {"count", "ns"}.
std::string WriteV2ModelStatistics(const std::vector<ModelStatistics>& stats);

}  // namespace berth::http
