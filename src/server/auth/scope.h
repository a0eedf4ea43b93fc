// Scopes: what a route or RPC needs, and what an API key grants.
//
// Every REST route and gRPC RPC declares, where it is registered, the scope
// it needs (router.h, grpc_server.cc); auth::Authorizer checks it before the
// handler runs. A key grants a list of scopes, each written as text:
//
//   infer         inference on every model
//   infer:MODEL   inference on MODEL only
//   read          metadata, the repository index, statistics, metrics, the registry's records
//   admin         everything: changes to what is served, API keys, and all of the above
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace berth::auth {

enum class Scope {
  kNone,  // liveness and readiness: answered without credentials
  kRead,
  kInfer,
  kAdmin,
};

// "none", "read", "infer", "admin".
std::string_view ScopeName(Scope scope);

// One scope a key grants. `model` is set only for infer:MODEL.
struct Grant {
  Scope scope = Scope::kRead;
  std::string model;

  bool operator==(const Grant&) const = default;
};

// Parses "infer", "infer:MODEL" (MODEL a valid model name), "read" or
// "admin". InvalidArgument, quoting the text, otherwise.
StatusOr<Grant> ParseGrant(std::string_view text);
// The grant as ParseGrant reads it.
std::string GrantText(const Grant& grant);

// Whether `grants` allow a request that needs `needed` on `model` (empty
// when the route names no model: then only an unrestricted infer grant
// allows an inference). admin allows everything; kNone needs nothing.
bool Allows(const std::vector<Grant>& grants, Scope needed, std::string_view model);

}  // namespace berth::auth
