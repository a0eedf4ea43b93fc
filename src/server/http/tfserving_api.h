// The rest of TensorFlow Serving's REST API beside :predict
// (https://www.tensorflow.org/tfx/serving/api_rest): model metadata, and the
// Classify and Regress APIs, whose requests carry tf.Examples as JSON.
//
//   GET  /v1/models/{m}[/versions/{v} | /labels/{l}]/metadata
//   POST /v1/models/{m}[/versions/{v} | /labels/{l}]:classify
//   POST /v1/models/{m}[/versions/{v} | /labels/{l}]:regress
//
// A Berth model has one signature, "serving_default", made of its inputs and
// outputs. An Example's features name the model's inputs ({"X": [5.1, 3.5,
// 1.4, 0.2]}); "context" features are added to every example.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/inference_request.h"
#include "core/model.h"
#include "core/status.h"

namespace berth::http {

// {"model_spec": {"name", "signature_name", "version"}, "metadata":
// {"signature_def": {"signature_def": {"serving_default": {"inputs",
// "outputs", "method_name"}}}}}, each tensor as TF's TensorInfo JSON
// ({"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}]}, "name"}).
std::string WriteTfServingMetadata(const Model& model);

struct TfServingExamples {
  std::unique_ptr<InferenceRequest> request;  // one row per example
  int64_t rows = 0;
};

// Parses {"signature_name"?, "context"?: {feature: value}, "examples":
// [{feature: value}, ...]} against the model's `inputs`. InvalidArgument for
// malformed JSON, an unknown member or signature, no examples, a feature in
// both an example and the context, and every row error of json_rows.h.
StatusOr<TfServingExamples> ParseTfServingExamples(std::string_view body,
                                                   const std::vector<TensorSpec>& inputs);

// {"result": [[[class, score], ...], ...]}: per example, every class with its
// score, from the model's first floating-point output of shape [rows, C] with
// C >= 2 (class names are the column indices, "0", "1", ...).
// FailedPrecondition if the model has no such output.
StatusOr<std::string> WriteTfServingClassifyResponse(const InferenceResponse& response,
                                                     int64_t rows);

// {"result": [value, ...]}: per example, the one value of the model's first
// numeric output that has one element per row. FailedPrecondition if none.
StatusOr<std::string> WriteTfServingRegressResponse(const InferenceResponse& response,
                                                    int64_t rows);

}  // namespace berth::http
