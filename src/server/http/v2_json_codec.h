// JSON encoding of the Open Inference Protocol (KServe v2) REST messages.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/inference_request.h"
#include "core/model.h"
#include "core/model_manager.h"
#include "core/status.h"

namespace berth::http {

// Parses an infer request body. The model name and version come from the URL
// and are not set here. InvalidArgument with the position for malformed JSON.
StatusOr<std::unique_ptr<InferenceRequest>> ParseV2InferRequest(std::string_view body);

std::string WriteV2InferResponse(const InferenceResponse& response);

// {"name", "versions", "platform", "inputs", "outputs"} for `model`;
// `versions` lists the model's READY versions.
std::string WriteV2ModelMetadata(const Model& model, const std::vector<int64_t>& versions);

std::string WriteV2ServerMetadata(std::string_view name, std::string_view version,
                                  const std::vector<std::string>& extensions);

// [{"name", "version", "state", "reason"}] for every model version.
std::string WriteV2RepositoryIndex(const std::vector<ModelEntry>& models, bool ready_only);

}  // namespace berth::http
