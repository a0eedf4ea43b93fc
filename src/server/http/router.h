// Router: maps (method, path) to a handler. Patterns are split on '/'; a
// segment is a literal, "{name}" (captures the whole segment) or
// "{name}:suffix" (captures up to a literal suffix, for TF-Serving's
// "/v1/models/{model}:predict"). Routes are registered before the server
// starts; matching is read-only and thread-safe.
//
// Every route declares the scope it needs (auth/scope.h) where it is
// registered; Dispatch asks the auth::Authorizer before the handler runs,
// so a refused request is answered 401/403/429 before the route looks
// anything up (a refusal never says whether a model exists). The handler
// finds who asked in HttpRequest::actor.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/auth/authorizer.h"
#include "server/http/http_message.h"

namespace berth::http {

using PathParams = std::map<std::string, std::string, std::less<>>;

// The value of path parameter `key` ("{model}"), or empty if the route has none.
inline std::string_view PathParam(const PathParams& params, std::string_view key) {
  auto it = params.find(key);
  return it == params.end() ? std::string_view() : std::string_view(it->second);
}
using Handler = std::function<void(HttpRequest&, const PathParams&, Reply)>;

// The answer to a refused request: 401 with WWW-Authenticate: Bearer, 403,
// or 429 with Retry-After; a JSON {"error": ...} body.
HttpResponse AuthErrorResponse(const auth::Decision& decision);

class Router {
 public:
  // Without an authorizer: no keys, admin routes for loopback clients only.
  Router();
  // `authorizer` must outlive the router.
  explicit Router(const auth::Authorizer* authorizer);

  void Add(std::string method, std::string_view pattern, auth::Scope scope, Handler handler);

  // Finds the route and calls its handler, or replies 404 / 405.
  void Dispatch(HttpRequest& request, Reply reply) const;
  // Authorizes `request` (its method, path, headers and peer; no body yet)
  // against its route's scope, as Dispatch would, for a body the server
  // streams to disk: a refusal (401/403/429) is returned before any of the
  // body is read; otherwise the request is marked authorized (its actor
  // set) and Dispatch does not check it again.
  std::optional<HttpResponse> Preauthorize(HttpRequest& request) const;
  // Whether every request but the health routes needs an API key
  // (--require-auth).
  bool requires_auth() const { return authorizer_->require_auth(); }

 private:
  struct Segment {
    std::string literal;  // when !capture, or the suffix after a capture
    std::string capture;  // parameter name; empty for a literal segment
  };
  struct Route {
    std::string method;
    std::vector<Segment> segments;
    auth::Scope scope;
    Handler handler;
  };
  static bool Match(const Route& route, const std::vector<std::string_view>& parts,
                    PathParams* params);

  std::unique_ptr<auth::Authorizer> default_authorizer_;
  const auth::Authorizer* authorizer_;
  std::vector<Route> routes_;
};

}  // namespace berth::http
