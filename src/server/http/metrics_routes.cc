#include "server/http/metrics_routes.h"

namespace berth::http {

void RegisterMetricsRoutes(const Metrics* metrics, const ServerContext* ctx, Router* router) {
  router->Add("GET", "/metrics", [metrics, ctx](HttpRequest&, const PathParams&, Reply reply) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics->RenderPrometheus(*ctx->models);
    r.body +=
        "# HELP berth_server_ready 1 if the server is ready (what /v2/health/ready answers), "
        "else 0.\n# TYPE berth_server_ready gauge\nberth_server_ready ";
    r.body += ctx->IsReady() ? "1\n" : "0\n";
    reply(std::move(r));
  });
}

}  // namespace berth::http
