// GET /metrics: Prometheus scrape endpoint on the REST port.
#pragma once

#include "monitoring/metrics.h"
#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

// Neither pointer is owned; both outlive the router. Besides the inference
// metrics, berth_server_ready reports ServerContext::IsReady(), the same
// answer every health route gives.
void RegisterMetricsRoutes(const Metrics* metrics, const ServerContext* ctx, Router* router);

}  // namespace berth::http
