// Router: maps (method, path) to a handler. Patterns are split on '/'; a
// segment is a literal, "{name}" (captures the whole segment) or
// "{name}:suffix" (captures up to a literal suffix, for TF-Serving's
// "/v1/models/{model}:predict"). Routes are registered before the server
// starts; matching is read-only and thread-safe.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "server/http/http_message.h"

namespace berth::http {

using PathParams = std::map<std::string, std::string, std::less<>>;

// The value of path parameter `key` ("{model}"), or empty if the route has none.
inline std::string_view PathParam(const PathParams& params, std::string_view key) {
  auto it = params.find(key);
  return it == params.end() ? std::string_view() : std::string_view(it->second);
}
using Handler = std::function<void(HttpRequest&, const PathParams&, Reply)>;

class Router {
 public:
  void Add(std::string method, std::string_view pattern, Handler handler);

  // Finds the route and calls its handler, or replies 404 / 405.
  void Dispatch(HttpRequest& request, Reply reply) const;

 private:
  struct Segment {
    std::string literal;  // when !capture, or the suffix after a capture
    std::string capture;  // parameter name; empty for a literal segment
  };
  struct Route {
    std::string method;
    std::vector<Segment> segments;
    Handler handler;
  };
  static bool Match(const Route& route, const std::vector<std::string_view>& parts,
                    PathParams* params);

  std::vector<Route> routes_;
};

}  // namespace berth::http
