#include "server/http/router.h"

namespace berth::http {
namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start < path.size()) {
    if (path[start] == '/') {
      ++start;
      continue;
    }
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    parts.push_back(path.substr(start, end - start));
    start = end;
  }
  return parts;
}

}  // namespace

HttpResponse AuthErrorResponse(const auth::Decision& decision) {
  HttpResponse r = ErrorResponse(decision.status);
  if (decision.status.code() == Status::Code::kUnauthenticated) {
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
  }
  if (decision.retry_after_secs > 0) {
    r.status = 429;
    r.headers.emplace_back("Retry-After", std::to_string(decision.retry_after_secs));
  }
  return r;
}

Router::Router()
    : default_authorizer_(std::make_unique<auth::Authorizer>(auth::AuthOptions{}, nullptr)),
      authorizer_(default_authorizer_.get()) {}

Router::Router(const auth::Authorizer* authorizer) : authorizer_(authorizer) {}

void Router::Add(std::string method, std::string_view pattern, auth::Scope scope, Handler handler) {
  Route route{std::move(method), {}, scope, std::move(handler)};
  for (std::string_view part : SplitPath(pattern)) {
    Segment seg;
    if (!part.empty() && part.front() == '{') {
      const size_t close = part.find('}');
      seg.capture = std::string(part.substr(1, close - 1));
      seg.literal = std::string(part.substr(close + 1));
    } else {
      seg.literal = std::string(part);
    }
    route.segments.push_back(std::move(seg));
  }
  routes_.push_back(std::move(route));
}

bool Router::Match(const Route& route, const std::vector<std::string_view>& parts,
                   PathParams* params) {
  if (route.segments.size() != parts.size()) return false;
  // Every segment is checked before any capture is stored: trying a route
  // that does not match allocates nothing, whatever the routes' order.
  for (size_t i = 0; i < parts.size(); ++i) {
    const Segment& seg = route.segments[i];
    const std::string_view part = parts[i];
    if (seg.capture.empty() ? part != seg.literal
                            : part.size() <= seg.literal.size() || !part.ends_with(seg.literal)) {
      return false;
    }
  }
  params->clear();
  for (size_t i = 0; i < parts.size(); ++i) {
    const Segment& seg = route.segments[i];
    if (seg.capture.empty()) continue;
    params->emplace(seg.capture, parts[i].substr(0, parts[i].size() - seg.literal.size()));
  }
  return true;
}

std::optional<HttpResponse> Router::Preauthorize(HttpRequest& request) const {
  const auto parts = SplitPath(request.path);
  PathParams params;
  for (const Route& route : routes_) {
    if (route.method != request.method || !Match(route, parts, &params)) continue;
    if (route.scope == auth::Scope::kInfer) request.model = PathParam(params, "model");
    auth::Decision decision = authorizer_->Authorize(
        {request.Header("authorization"), request.peer, PathParam(params, "model")}, route.scope);
    if (!decision.ok()) return AuthErrorResponse(decision);
    request.actor = std::move(decision.actor);
    request.authorized = true;
    return std::nullopt;
  }
  return std::nullopt;  // Dispatch answers 404 / 405
}

void Router::Dispatch(HttpRequest& request, Reply reply) const {
  const auto parts = SplitPath(request.path);
  PathParams params;
  bool path_known = false;
  for (const Route& route : routes_) {
    if (!Match(route, parts, &params)) continue;
    path_known = true;
    if (route.method == request.method) {
      // An inference route's refusal names the model in its access line.
      if (route.scope == auth::Scope::kInfer) request.model = PathParam(params, "model");
      if (!request.authorized) {
        auth::Decision decision = authorizer_->Authorize(
            {request.Header("authorization"), request.peer, PathParam(params, "model")},
            route.scope);
        if (!decision.ok()) return reply(AuthErrorResponse(decision));
        request.actor = std::move(decision.actor);
      }
      // Past the door: another route's answers have no access line.
      if (route.scope != auth::Scope::kInfer) request.access_logged = true;
      route.handler(request, params, std::move(reply));
      return;
    }
  }
  if (path_known) {
    HttpResponse r = ErrorResponse(
        Status::InvalidArgument("method " + request.method + " is not allowed on " + request.path));
    r.status = 405;
    reply(std::move(r));
    return;
  }
  reply(ErrorResponse(Status::NotFound("no route for " + request.method + " " + request.path)));
}

}  // namespace berth::http
