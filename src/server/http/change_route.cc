#include "server/http/change_route.h"

#include <memory>
#include <utility>

namespace berth::http {

Handler ChangeRoute(const ServerContext* ctx, Handler handler) {
  return [ctx, handler = std::move(handler)](HttpRequest& req, const PathParams& params,
                                             Reply reply) {
    // The connection does not read its request once it is dispatched, and
    // may be gone (a shutdown's 503 sent) before the action runs: the
    // action owns the request, its body and its uploaded file.
    auto request = std::make_shared<HttpRequest>(std::move(req));
    ctx->RunChange([handler, request, params, reply = std::move(reply)](const Status& admitted) {
      if (!admitted.ok()) return reply(ErrorResponse(admitted));
      handler(*request, params, reply);
    });
  };
}

}  // namespace berth::http
