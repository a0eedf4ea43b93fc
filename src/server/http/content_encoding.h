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

// Replaces `body` with its decoded form. A gzip body may hold several
// members (concatenated gzip files), decoded one after another as `gzip -d`
// does; a deflate body is one zlib (or raw deflate) stream. InvalidArgument
// for corrupt or truncated data and for any byte after the end of the stream
// (other than a further gzip member); ResourceExhausted if the decoded body
// would exceed `max_bytes` (so a small compressed body cannot expand without
// bound), counting every member.
Status DecodeBody(std::string_view encoding, uint64_t max_bytes, std::string* body);

}  // namespace berth::http
