#include "server/http/metrics_routes.h"

#include <string>
#include <utility>

#include "backends/python/python_backend.h"
#include "core/memory_budget.h"
#include "monitoring/alerts/alert_manager.h"
#include "monitoring/drift/drift_monitor.h"
#include "monitoring/feedback/feedback_monitor.h"
#include "monitoring/logs/logs.h"
#include "monitoring/process_metrics.h"
#include "registry/store_sync.h"

namespace berth::http {

void RegisterMetricsRoutes(const Metrics* metrics, const ServerContext* ctx, Router* router,
                           const ConnectionCounters* connections) {
  router->Add("GET", "/metrics", auth::Scope::kRead, [metrics, ctx, connections](HttpRequest&, const PathParams&,
                                                              Reply reply) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics->RenderPrometheus(*ctx->models);
    r.body +=
        "# HELP berth_server_ready 1 if the server is ready (what /v2/health/ready answers), "
        "else 0.\n# TYPE berth_server_ready gauge\nberth_server_ready ";
    r.body += ctx->IsReady() ? "1\n" : "0\n";
    if (ctx->store_sync != nullptr) {
      r.body +=
          "# HELP berth_registry_store_degraded 1 while this replica cannot read its registry "
          "store (it serves what it holds; changes fail), else 0.\n"
          "# TYPE berth_registry_store_degraded gauge\nberth_registry_store_degraded ";
      r.body += ctx->store_sync->Health().degraded ? "1\n" : "0\n";
    }
    if (ctx->memory_budget != nullptr) {
      r.body +=
          "# HELP berth_memory_budget_bytes Memory the loaded model versions may hold "
          "(--memory-budget); 0: no limit.\n# TYPE berth_memory_budget_bytes gauge\n"
          "berth_memory_budget_bytes " +
          std::to_string(ctx->memory_budget->budget()) +
          "\n# HELP berth_memory_reserved_bytes Memory reserved by the loaded model versions "
          "(measured or estimated), counted against the budget.\n"
          "# TYPE berth_memory_reserved_bytes gauge\nberth_memory_reserved_bytes " +
          std::to_string(ctx->memory_budget->reserved()) + "\n";
    }
    if (connections != nullptr) {
      r.body +=
          "# HELP berth_http_connections_cut_total REST connections closed for breaking a "
          "limit: header_timeout (--header-timeout-secs, slowloris), slow_body "
          "(--min-body-rate), header_too_large (--max-header-bytes, answered 431).\n"
          "# TYPE berth_http_connections_cut_total counter\n";
      const std::pair<const char*, uint64_t> cuts[] = {
          {"header_timeout", connections->header_timeouts.load(std::memory_order_relaxed)},
          {"slow_body", connections->slow_bodies.load(std::memory_order_relaxed)},
          {"header_too_large", connections->headers_too_large.load(std::memory_order_relaxed)},
      };
      for (const auto& [reason, n] : cuts) {
        r.body += std::string("berth_http_connections_cut_total{reason=\"") + reason + "\"} " +
                  std::to_string(n) + "\n";
      }
    }
    if (ctx->shared_memory != nullptr) {
      const SharedMemoryRegistry::Totals shm = ctx->shared_memory->totals();
      r.body +=
          "# HELP berth_shared_memory_regions System shared-memory regions registered.\n"
          "# TYPE berth_shared_memory_regions gauge\nberth_shared_memory_regions " +
          std::to_string(shm.regions) +
          "\n# HELP berth_shared_memory_bytes Bytes the registered system shared-memory "
          "regions span.\n# TYPE berth_shared_memory_bytes gauge\nberth_shared_memory_bytes " +
          std::to_string(shm.bytes) + "\n";
    }
    if (ctx->drift != nullptr) r.body += ctx->drift->RenderPrometheus(*ctx->models);
    if (ctx->feedback != nullptr) r.body += ctx->feedback->RenderPrometheus();
    if (ctx->python_workers != nullptr) r.body += ctx->python_workers->RenderPrometheus();
    if (ctx->logs != nullptr) r.body += ctx->logs->RenderPrometheus();
    if (ctx->alerts != nullptr) r.body += ctx->alerts->RenderPrometheus();
    r.body += RenderProcessMetrics();
    reply(std::move(r));
  });
}

}  // namespace berth::http
