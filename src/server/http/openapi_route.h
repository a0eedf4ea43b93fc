// GET /openapi.json: the OpenAPI 3 description of every REST route Berth
// serves. The document's source is src/server/http/openapi.json; CMake
// compiles it into the binary, so a running server needs no source tree.
#pragma once

#include <string_view>

#include "server/http/router.h"

namespace berth::http {

// The embedded OpenAPI document (JSON). Defined in a file generated at
// configure time (see CMakeLists.txt).
std::string_view OpenApiSpec();

void RegisterOpenApiRoute(Router* router);

}  // namespace berth::http
