// GET /metrics: Prometheus scrape endpoint on the REST port.
#pragma once

#include "core/model_manager.h"
#include "monitoring/metrics.h"
#include "server/http/router.h"

namespace berth::http {

// Neither pointer is owned; both outlive the router.
void RegisterMetricsRoutes(const Metrics* metrics, const ModelManager* models, Router* router);

}  // namespace berth::http
