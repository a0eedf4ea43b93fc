// The Open Inference Protocol (KServe v2) REST routes: health, server and
// model metadata, readiness, inference, repository index.
#pragma once

#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

void RegisterV2Routes(const ServerContext* context, Router* router);

}  // namespace berth::http
