// Request bodies sent compressed (Content-Encoding: gzip or deflate), as
// tritonclient does with request_compression_algorithm.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth::http {

// Whether `encoding` (a Content-Encoding value) is one DecodeBody accepts:
// empty, "identity", "gzip" or "deflate" (zlib or raw deflate).
bool IsSupportedEncoding(std::string_view encoding);

// Replaces `body` with its decoded form. InvalidArgument for corrupt data,
// ResourceExhausted if the decoded body would exceed `max_bytes` (so a small
// compressed body cannot expand without bound).
Status DecodeBody(std::string_view encoding, uint64_t max_bytes, std::string* body);

}  // namespace berth::http
