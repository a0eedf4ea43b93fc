// The row route: inference for people who think in feature rows rather than
// tensors, a Berth extension of the v2 REST API.
//
//   POST /v2/models/{model}[/versions/{version}]/infer_rows
//   {"instances": [{"<input>": value, ...}, ...]}
//   -> {"model_name": "...", "model_version": "...",
//       "predictions": [{"<output>": value, ...}, ...]}
//
// It sits beside /v2/models/{model}/infer (same model and version addressing)
// and differs only in the body: one object per row, keyed by the model's
// input names, and one object per row back, keyed by output names. A value
// is the row's value of that input: a scalar for a one-column input (shape
// [-1, 1], e.g. one DataFrame column converted by skl2onnx), a list for a
// vector input ([-1, n]). Numbers take the input's datatype, strings are
// BYTES, so numeric and categorical columns mix freely. Rows are assembled
// by server/http/json_rows.h, shared with TF Serving and the cloud routes.
#pragma once

#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

void RegisterRowsRoutes(const ServerContext* context, Router* router);

}  // namespace berth::http
