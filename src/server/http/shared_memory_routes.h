// Triton's system shared-memory extension over REST:
//   POST /v2/systemsharedmemory/region/{region}/register  {"key", "offset", "byte_size"}
//   POST /v2/systemsharedmemory/region/{region}/unregister
//   POST /v2/systemsharedmemory/unregister                (every region)
//   GET  /v2/systemsharedmemory[/region/{region}]/status  [{"name", "key", "offset", "byte_size"}]
// and the CUDA shared-memory routes, answered 400 (Berth has no GPU build).
// The regions are the core's (core/shared_memory.h), reached through
// ServerContext so that gRPC applies the same checks.
#pragma once

#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

// `context` is not owned and outlives the router.
void RegisterSharedMemoryRoutes(const ServerContext* context, Router* router);

}  // namespace berth::http
