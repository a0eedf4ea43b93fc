// GET /metrics: Prometheus scrape endpoint on the REST port.
#pragma once

#include "monitoring/metrics.h"
#include "server/http/connection_counters.h"
#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

// Neither pointer is owned; both outlive the router. Besides the inference
// metrics, berth_server_ready reports ServerContext::IsReady(), the same
// answer every health route gives.
// GET /metrics: `metrics`, readiness, the memory budget and, when
// `connections` is not null, the REST connections cut off by the
// transport's limits.
void RegisterMetricsRoutes(const Metrics* metrics, const ServerContext* ctx, Router* router,
                           const ConnectionCounters* connections = nullptr);

}  // namespace berth::http
