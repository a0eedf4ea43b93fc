// JSON encoding of TensorFlow Serving's REST predict and model status API
// (https://www.tensorflow.org/tfx/serving/api_rest), for clients written
// against TF Serving.
//
// A predict body carries its inputs in one of two formats:
//   row      {"instances": [row, ...]}   see server/http/json_rows.h
//   columnar {"inputs": value | {input name: value}}
// JSON numbers take the datatype the model declares for the input, strings
// are BYTES. Not supported: {"b64": ...} binary values in requests, named signatures
// other than "serving_default".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/inference_request.h"
#include "core/model_manager.h"
#include "core/status.h"
#include "core/tensor.h"

namespace berth::http {

enum class TfServingFormat { kRow, kColumnar };

struct TfServingPredictRequest {
  // Inputs set; the model name and version come from the URL.
  std::unique_ptr<InferenceRequest> request;
  TfServingFormat format = TfServingFormat::kRow;
  int64_t rows = 0;  // kRow: the number of instances
};

// Parses a predict body against the model's declared `inputs`. A value
// {"b64": "<base64>"}, in rows or columns, is one BYTES element holding the
// decoded bytes (TF Serving's binary strings; a row that is such an object
// is the value of a single-input model, not an object naming inputs).
// InvalidArgument for malformed JSON, both or neither of "instances" and
// "inputs", an unknown field or signature, a {"b64": ...} value for an input
// that is not BYTES or whose text is not base64, and every row or tensor
// error of json_rows.h.
StatusOr<TfServingPredictRequest> ParseTfServingPredictRequest(
    std::string_view body, const std::vector<TensorSpec>& inputs);

// {"predictions": [...]} for kRow (one entry per row; an object
// {output: value} per row when the model has several outputs) or
// {"outputs": ...} for kColumnar (the tensor, or {output: tensor} for several
// outputs). FailedPrecondition if a row-format output has no batch dimension.
// A BYTES element that is not valid UTF-8 is written {"b64": "<base64>"}, as
// TF Serving writes binary strings; UTF-8 text stays a JSON string.
StatusOr<std::string> WriteTfServingPredictResponse(const InferenceResponse& response,
                                                    TfServingFormat format, int64_t rows);

// {"model_version_status": [{"version", "state", "status": {"error_code",
// "error_message"}}]} for `versions`, highest first. States map as LOADING ->
// LOADING, READY -> AVAILABLE, UNLOADING -> UNLOADING and UNAVAILABLE -> END
// with error_code UNKNOWN and the reason as the message.
std::string WriteTfServingModelStatus(const std::vector<VersionEntry>& versions);

}  // namespace berth::http
