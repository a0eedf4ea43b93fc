#include "server/http/metrics_routes.h"

#include "core/memory_budget.h"

namespace berth::http {

void RegisterMetricsRoutes(const Metrics* metrics, const ServerContext* ctx, Router* router) {
  router->Add(
      "GET", "/metrics", auth::Scope::kRead,
      [metrics, ctx](HttpRequest&, const PathParams&, Reply reply) {
        HttpResponse r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = metrics->RenderPrometheus(*ctx->models);
        r.body +=
            "# HELP berth_server_ready 1 if the server is ready (what /v2/health/ready answers), "
            "else 0.\n# TYPE berth_server_ready gauge\nberth_server_ready ";
        r.body += ctx->IsReady() ? "1\n" : "0\n";
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
        reply(std::move(r));
      });
}

}  // namespace berth::http
