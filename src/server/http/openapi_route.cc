#include "server/http/openapi_route.h"

#include <string>

namespace berth::http {

void RegisterOpenApiRoute(Router* router) {
  router->Add("GET", "/openapi.json", auth::Scope::kRead,
              [](HttpRequest&, const PathParams&, Reply reply) {
                reply(JsonResponse(200, std::string(OpenApiSpec())));
              });
}

}  // namespace berth::http
