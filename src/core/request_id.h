// Request ids: every prediction has one, so that ground truth sent later
// (POST /v2/models/{m}/feedback, monitoring/feedback/) can name it, and so
// that logs can. A request keeps the id it brought (the v2 `id` field, gRPC's
// ModelInferRequest.id), else takes its X-Request-Id header (gRPC metadata
// x-request-id), else is given a new one; InferenceService does this once
// for every door, and the response carries it back (InferenceResponse::id).
#pragma once

#include <string>
#include <string_view>

namespace berth {

// The header (lower-case; the gRPC metadata key too) a client's id comes in
// and the REST doors send it back in.
inline constexpr std::string_view kRequestIdHeader = "x-request-id";

// Longest id a header may set; a longer or unprintable one is ignored and
// a new id given instead.
inline constexpr size_t kMaxRequestIdBytes = 128;

// A new id: 32 lower-case hex digits, 128 bits from a thread-local
// generator (no lock, no system call after a thread's first id).
std::string NewRequestId();

// Whether `id` may stand as a request's id when it comes in a header:
// 1..kMaxRequestIdBytes printable ASCII characters.
bool IsUsableRequestId(std::string_view id);

}  // namespace berth
