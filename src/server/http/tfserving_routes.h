// TensorFlow Serving's REST routes, so that clients written against TF
// Serving work unchanged:
//
//   GET  /v1/models/{model}[/versions/{version}]            model status
//   POST /v1/models/{model}[/versions/{version}]:predict    row or columnar predict
//
// Bodies are described in server/http/tfserving_json_codec.h; errors are
// {"error": "..."} as in TF Serving. Without a version, predict uses the
// highest READY version and status lists every version.
#pragma once

#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

void RegisterTfServingRoutes(const ServerContext* context, Router* router);

}  // namespace berth::http
