// ChangeRoute: a REST route that changes what is served (a repository load
// or unload, a registry push, promote, split, shadow, rollback, archive,
// restore, delete) runs on the server's loader (ServerContext::RunChange,
// core/admin_executor.h), not on the network thread that read it.
//
// The request is moved out of the connection into the action, which runs
// `handler` on the loader's thread; the handler answers through its Reply as
// any route does, and the connection sends the answer, as it sends an
// inference's from the scheduler's thread (the HTTP server's pending replies
// also answer it 503 if a shutdown's grace period ends first). An action the
// loader refuses (its queue is full) or cancels (shutdown) is answered 503
// with a JSON error, without running `handler`.
#pragma once

#include "server/http/router.h"
#include "server/server_context.h"

namespace berth::http {

// `ctx` must outlive the route.
Handler ChangeRoute(const ServerContext* ctx, Handler handler);

}  // namespace berth::http
