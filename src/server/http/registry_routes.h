// The registry's REST admin API (docs/registry.md): versions, aliases and
// their history, and the alias moves (promote, rollback).
//
//   GET  /v2/registry/models
//   GET  /v2/registry/models/{model}
//   GET  /v2/registry/models/{model}/history
//   POST /v2/registry/models/{model}/promote   {"version": N, "alias": "production", "reason": ""}
//   POST /v2/registry/models/{model}/rollback  {"alias": "production", "reason": ""}
//
// Reads combine the store's records with the live table's states; moves go
// through ServerContext, which every door shares.
#pragma once

#include <string_view>

#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

void RegisterRegistryRoutes(const ServerContext* ctx, Router* router);

// Whether a request (its method and raw target) is a push,
// POST /v2/registry/models/{model}/versions: the HTTP server streams such
// bodies to a file (HttpServerOptions::streams_to_file).
bool IsPushTarget(std::string_view method, std::string_view target);

}  // namespace berth::http
