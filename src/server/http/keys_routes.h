// The API keys' admin routes (scope admin; docs/security.md):
//   GET    /v2/keys         every key: name, id, scopes, rate, created, expires, revoked
//   POST   /v2/keys         {"name", "scopes": [...], "rate"?, "expires_days"?} -> {"name", "key"}
//   DELETE /v2/keys/{name}  revokes the key
// The key's text is in the answer to its creation only; no route returns a
// secret or a hash.
#pragma once

#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

// `ctx` outlives the router; its authorizer manages the keys.
void RegisterKeysRoutes(const ServerContext* ctx, Router* router);

}  // namespace berth::http
