// The HTTP request/response as route handlers see them: plain structs, no
// Boost types, so handlers and codecs are testable without a socket.
#pragma once

#include <functional>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/inference_request.h"
#include "core/model_manager.h"
#include "core/status.h"

namespace berth::http {

// A request body streamed to a file (HttpServerOptions::streams_to_file);
// the file is removed when the last holder lets go.
struct UploadedBody {
  explicit UploadedBody(std::filesystem::path p) : path(std::move(p)) {}
  ~UploadedBody() {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
  }
  UploadedBody(const UploadedBody&) = delete;
  UploadedBody& operator=(const UploadedBody&) = delete;
  const std::filesystem::path path;
};

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // percent-decoded path, without the query
  std::string query;   // raw query string, without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string peer;    // the client's IP address as text ("127.0.0.1", "::1")
  // Who asks, set by the router once the request is authorized: the API
  // key's name, or `peer` when no key was read. The audit log's actor.
  std::string actor;
  // Set by Router::Preauthorize (a body streamed to disk is authorized
  // before it is read); never from the wire.
  bool authorized = false;
  // Set instead of `body` on a route whose body streams to a file.
  std::shared_ptr<const UploadedBody> upload;
  // The {model} an inference route names, set by the router: the access
  // line of a refusal names it.
  std::string model;
  // Whether the request's access line is not the server's to write if it is
  // answered an error (server/refusal_log.h): set by the router on a route
  // that is not an inference's, and by an inference route as it hands the
  // request to InferenceService, which writes the line (HandToCore). Never
  // from the wire. Mutable: a route marks the request it only reads.
  mutable bool access_logged = false;

  // The first header named `name` (lower-case), or empty.
  std::string_view Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return {};
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// The request's headers as ModelManager::Resolve reads a split's routing
// key (Berth-Routing-Key, or the split's sticky key): no copy is made.
class HeaderRoutingKeys final : public RoutingKeys {
 public:
  explicit HeaderRoutingKeys(const HttpRequest& request) : request_(request) {}
  std::string_view Find(std::string_view name) const override { return request_.Header(name); }

 private:
  const HttpRequest& request_;
};
// Called by an inference route just before InferenceService::Infer: the
// core writes the request's access line from here on.
inline void HandToCore(const HttpRequest& request) { request.access_logged = true; }

// Says which version answered, on every inference response.
inline constexpr std::string_view kModelVersionHeader = "Berth-Model-Version";
// Says which id the prediction has (the request's, or the one the server
// gave it: core/request_id.h), on every inference response.
inline constexpr std::string_view kRequestIdResponseHeader = "X-Request-Id";

// The headers every door's successful inference answer carries:
// Berth-Model-Version and X-Request-Id.
inline void AddInferenceHeaders(const InferenceResponse& response, HttpResponse* r) {
  r->headers.emplace_back(kModelVersionHeader, response.model_version);
  r->headers.emplace_back(kRequestIdResponseHeader, response.id);
}

// Delivers the response; may be called from any thread, exactly once.
using Reply = std::function<void(HttpResponse)>;

// The HTTP status for a Status code (400, 404, 413, 503, 504, 500, ...).
int HttpStatusFor(Status::Code code);

// The Status code an HTTP status stands for (429: kResourceExhausted, other
// 4xx without a code of their own: kInvalidArgument, other 5xx: kInternal).
Status::Code CodeForHttpStatus(int status);

// {"error": "<message>"} with the mapped status; a 503 carries
// `Retry-After: 1`.
HttpResponse ErrorResponse(const Status& status);
// The answer to a change of what is served (repository load, registry push,
// promote, split, shadow, rollback) that failed: as ErrorResponse, except
// that ResourceExhausted, which such a change returns only when a version
// would not fit --memory-budget, is 507 Insufficient Storage (the server
// cannot hold what the request needs; 413 would blame a request body).
HttpResponse ChangeErrorResponse(const Status& status);
HttpResponse JsonResponse(int status, std::string body);

}  // namespace berth::http
