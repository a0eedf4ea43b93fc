#include "server/http/content_encoding.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>

namespace berth::http {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Inflates `in` with zlib; `window_bits` selects the wrapper.
Status Inflate(const std::string& in, int window_bits, uint64_t max_bytes, std::string* out) {
  z_stream z{};
  if (inflateInit2(&z, window_bits) != Z_OK) return Status::Internal("zlib inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  out->clear();
  char chunk[64 * 1024];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof(chunk);
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&z);
      return Status::InvalidArgument(std::string("the compressed request body is corrupt (") +
                                     (z.msg != nullptr ? z.msg : "truncated") + ")");
    }
    const size_t produced = sizeof(chunk) - z.avail_out;
    if (out->size() + produced > max_bytes) {
      inflateEnd(&z);
      return Status::ResourceExhausted("the decompressed request body is larger than the limit of " +
                                       std::to_string(max_bytes) + " bytes");
    }
    out->append(chunk, produced);
    if (rc == Z_OK && produced == 0 && z.avail_in == 0) {
      inflateEnd(&z);
      return Status::InvalidArgument("the compressed request body is truncated");
    }
  }
  inflateEnd(&z);
  return Status::Ok();
}

}  // namespace

bool IsSupportedEncoding(std::string_view encoding) {
  const std::string e = Lower(encoding);
  return e.empty() || e == "identity" || e == "gzip" || e == "x-gzip" || e == "deflate";
}

Status DecodeBody(std::string_view encoding, uint64_t max_bytes, std::string* body) {
  const std::string e = Lower(encoding);
  if (e.empty() || e == "identity") return Status::Ok();
  if (!IsSupportedEncoding(e)) {
    return Status::InvalidArgument("Content-Encoding '" + std::string(encoding) +
                                   "' is not supported (use gzip, deflate or identity)");
  }
  std::string decoded;
  // 15 + 32: a zlib or gzip stream, told apart by its header. HTTP's
  // "deflate" is meant to be zlib-wrapped, but some clients send raw deflate.
  Status s = Inflate(*body, 15 + 32, max_bytes, &decoded);
  if (!s.ok() && e == "deflate" && s.code() == Status::Code::kInvalidArgument) {
    s = Inflate(*body, -15, max_bytes, &decoded);
  }
  RETURN_IF_ERROR(s);
  *body = std::move(decoded);
  return Status::Ok();
}

}  // namespace berth::http
