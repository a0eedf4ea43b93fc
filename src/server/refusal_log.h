// LogRefusal: the access line of a request a door refused before it reached
// InferenceService (core/inference_service.h), which writes the line of every
// request it sees. The REST server (http_server.cc, for its own refusals and
// the router's) and the gRPC service (grpc_server.cc) call it for: a
// malformed request or body, a missing or refused API key, a body over the
// limit, a rate limit, an unknown route, the in-flight budget. One line per
// refused request, so the access log holds every request that was answered
// an error, wherever it was refused. The key is never part of the line.
#pragma once

#include <chrono>
#include <string_view>

#include "core/inference_service.h"
#include "core/inference_timings.h"
#include "core/status.h"

namespace berth {

struct Refusal {
  Protocol protocol = Protocol::kRest;
  std::string_view model = {};   // the model the path or message names; may be empty
  int http_status = 0;           // REST's answer; 0 at gRPC
  std::string_view client = {};  // the client's address; may be empty
  std::chrono::steady_clock::time_point start = {};  // when the request began to arrive
};

// Hands the refused request's summary to `observer` (the logs; may be null:
// nothing is logged). Thread-safe as the observer is.
void LogRefusal(InferenceObserver* observer, const Refusal& refusal, const Status& status);

}  // namespace berth
