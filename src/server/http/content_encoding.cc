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

bool StartsGzipMember(std::string_view s) {
  return s.size() >= 2 && static_cast<unsigned char>(s[0]) == 0x1f &&
         static_cast<unsigned char>(s[1]) == 0x8b;
}

// Inflates `in` into `out`; `window_bits` selects the wrapper. With
// `gzip_members`, gzip members that follow the first are decoded too and
// appended (as `gzip -d` does). Any other byte after the end of the stream
// is an error: a body is one stream, not a stream and something else.
Status Inflate(std::string_view in, int window_bits, bool gzip_members, uint64_t max_bytes,
               std::string* out) {
  z_stream z{};
  if (inflateInit2(&z, window_bits) != Z_OK) return Status::Internal("zlib inflateInit2 failed");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&z};
  // zlib counts input in uInt: feed a body of any size in slices.
  constexpr size_t kMaxSlice = 1u << 30;
  size_t offset = 0;  // input bytes handed to zlib so far
  auto remaining = [&] { return in.size() - offset + z.avail_in; };
  out->clear();
  char chunk[64 * 1024];
  for (;;) {
    if (z.avail_in == 0 && offset < in.size()) {
      const size_t n = std::min(in.size() - offset, kMaxSlice);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + offset));
      z.avail_in = static_cast<uInt>(n);
      offset += n;
    }
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof(chunk);
    const int rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      return Status::InvalidArgument(std::string("the compressed request body is corrupt (") +
                                     (z.msg != nullptr ? z.msg : "truncated") + ")");
    }
    const size_t produced = sizeof(chunk) - z.avail_out;
    if (out->size() + produced > max_bytes) {
      return Status::ResourceExhausted("the decompressed request body is larger than the limit of " +
                                       std::to_string(max_bytes) + " bytes");
    }
    out->append(chunk, produced);
    if (rc == Z_STREAM_END) {
      const size_t left = remaining();
      if (left == 0) return Status::Ok();
      const std::string_view rest = in.substr(in.size() - left);
      if (gzip_members && StartsGzipMember(rest)) {
        if (inflateReset(&z) != Z_OK) return Status::Internal("zlib inflateReset failed");
        continue;
      }
      return Status::InvalidArgument("the compressed request body has " + std::to_string(left) +
                                     " bytes after the end of its compressed stream");
    }
    if (produced == 0 && remaining() == 0) {
      return Status::InvalidArgument("the compressed request body is truncated");
    }
  }
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
  const bool gzip = e != "deflate";
  std::string decoded;
  // 15 + 32: a zlib or gzip stream, told apart by its header. HTTP's
  // "deflate" is meant to be zlib-wrapped, but some clients send raw deflate.
  Status s = Inflate(*body, 15 + 32, gzip, max_bytes, &decoded);
  if (!s.ok() && !gzip && s.code() == Status::Code::kInvalidArgument) {
    // Unless raw deflate decodes or overflows, the zlib reading's error
    // names the problem better.
    Status raw = Inflate(*body, -15, false, max_bytes, &decoded);
    if (raw.ok() || raw.code() == Status::Code::kResourceExhausted) s = raw;
  }
  RETURN_IF_ERROR(s);
  *body = std::move(decoded);
  return Status::Ok();
}

}  // namespace berth::http
