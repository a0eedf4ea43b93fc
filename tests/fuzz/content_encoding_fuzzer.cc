// Fuzz target: a compressed request body (http::DecodeBody), as a client
// sends it with Content-Encoding.
//
// The first byte picks the encoding (gzip, deflate, x-gzip, identity, br);
// the rest is the body. Beyond not crashing: the only errors are
// INVALID_ARGUMENT (corrupt, truncated, trailing bytes, unsupported) and
// RESOURCE_EXHAUSTED (over the limit); a decoded body never exceeds the
// limit; and compressing a decoded body again decodes to the same bytes.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/http/content_encoding.h"

namespace {

// Small, so that an expanding input is refused quickly.
constexpr uint64_t kLimit = 1 << 20;
constexpr std::string_view kEncodings[] = {"gzip", "deflate", "x-gzip", "identity", "br"};

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

// One gzip member (window_bits 31) or zlib stream (15) holding `in`.
std::string Compress(const std::string& in, int window_bits) {
  z_stream z{};
  if (deflateInit2(&z, 1, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    Fail("deflateInit2");
  }
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) Fail("deflate");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view encoding = kEncodings[data[0] % std::size(kEncodings)];
  const std::string original(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string body = original;
  const berth::Status s = berth::http::DecodeBody(encoding, kLimit, &body);
  if (!s.ok()) {
    if (s.code() != berth::Status::Code::kInvalidArgument &&
        s.code() != berth::Status::Code::kResourceExhausted) {
      Fail("unexpected status " + s.ToString());
    }
    return 0;
  }
  if (encoding == "br") Fail("an unsupported encoding decoded");
  if (encoding == "identity") {
    if (body != original) Fail("identity changed the body");
    return 0;
  }
  if (body.size() > kLimit) Fail("decoded body over the limit");
  const int window_bits = encoding == "deflate" ? 15 : 31;
  std::string again = Compress(body, window_bits);
  const berth::Status r = berth::http::DecodeBody(encoding, kLimit, &again);
  if (!r.ok()) Fail("re-compressed body does not decode: " + r.ToString());
  if (again != body) Fail("re-compressed body decodes to other bytes");
  return 0;
}
