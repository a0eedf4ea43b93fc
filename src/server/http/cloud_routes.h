// The cloud container contracts, one per platform (--platform, see
// server/platform.h and docs/platforms.md). Only the chosen platform's routes
// are registered:
//
//   sagemaker  GET /ping                 200 when ready, else 503
//              POST /invocations         application/json or text/csv
//   vertex     GET $AIP_HEALTH_ROUTE     200 when ready, else 503
//              POST $AIP_PREDICT_ROUTE   application/json
//   azure      GET /                     200 while the process answers
//              GET /ready                200 when ready, else 503
//              POST /score               application/json
//
// JSON bodies are rows (server/http/json_rows.h): {"instances": [row, ...]}
// everywhere, also a bare list [row, ...] on SageMaker and Azure, also
// {"data": [...]} on Azure; Vertex's optional "parameters" object is accepted
// and ignored. A row is the input's value for a single-input model, or an
// object {input name: value}. text/csv (SageMaker) is one row of numbers per
// line for a model with one FP32/FP64 input [-1, n]. Every answer is
// {"predictions": [...]}, one entry per row: the output's value for a
// single-output model, else an object {output name: value}.
//
// The model is the one named by SageMaker's X-Amzn-SageMaker-Target-Model
// header (a trailing ".tar.gz" is ignored), else PlatformOptions::default_model,
// else the repository's only model.
#pragma once

#include "server/http/router.h"
#include "server/platform.h"
#include "server/server_context.h"

namespace berth::http {

// Registers the routes of `platform.platform` (none for Platform::kNone).
// `platform` is copied.
void RegisterCloudRoutes(const ServerContext* context, const PlatformOptions& platform,
                         Router* router);

}  // namespace berth::http
