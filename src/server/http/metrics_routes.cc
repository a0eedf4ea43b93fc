#include "server/http/metrics_routes.h"

namespace berth::http {

void RegisterMetricsRoutes(const Metrics* metrics, const ModelManager* models, Router* router) {
  router->Add("GET", "/metrics", [metrics, models](HttpRequest&, const PathParams&, Reply reply) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics->RenderPrometheus(*models);
    reply(std::move(r));
  });
}

}  // namespace berth::http
