// Fuzz target: the bytes of one HTTP/1.1 request, as the transport reads
// them: Beast's parser for the head, the framing rules (http::CheckFraming,
// http::ExpectsContinue), the body (Content-Length or chunked), then the
// Content-Encoding (http::DecodeBody).
//
// Beyond not crashing: a head the framing rules accept is framed by Beast
// the way its headers say (chunked exactly when Transfer-Encoding is present,
// by length exactly when Content-Length is), a body read by length has that
// length, and decoding fails only with INVALID_ARGUMENT or RESOURCE_EXHAUSTED.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "server/http/content_encoding.h"
#include "server/http/http_framing.h"

namespace {

namespace bhttp = boost::beast::http;

constexpr uint64_t kLimit = 1 << 20;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(kLimit);
  parser.eager(false);
  boost::asio::const_buffer rest(data, size);
  boost::beast::error_code ec;
  rest += parser.put(rest, ec);
  if (ec || !parser.is_header_done()) return 0;

  const berth::http::BeastRequest& head = parser.get();
  berth::http::ExpectsContinue(head);
  const berth::Status framing = berth::http::CheckFraming(head);
  if (!framing.ok()) {
    if (framing.code() != berth::Status::Code::kInvalidArgument) Fail(framing.ToString());
    return 0;
  }
  const bool has_transfer_encoding = head.find(bhttp::field::transfer_encoding) != head.end();
  const bool has_content_length = head.find(bhttp::field::content_length) != head.end();
  if (parser.chunked() != has_transfer_encoding) {
    Fail("an accepted head's Transfer-Encoding and Beast's chunked framing disagree");
  }
  if (parser.content_length().has_value() != has_content_length) {
    Fail("an accepted head's Content-Length and Beast's framing disagree");
  }
  const boost::optional<uint64_t> declared = parser.content_length();

  parser.eager(true);
  while (!parser.is_done() && rest.size() > 0) {
    const size_t used = parser.put(rest, ec);
    rest += used;
    if (ec == bhttp::error::need_more && used > 0) continue;
    if (ec) return 0;
  }
  if (!parser.is_done()) return 0;
  std::string body = parser.get().body();
  if (declared && body.size() != *declared) Fail("the body is not its declared length");

  const auto encoding = head.find(bhttp::field::content_encoding);
  if (encoding == head.end()) return 0;
  const std::string name(encoding->value());
  if (!berth::http::IsSupportedEncoding(name)) return 0;
  const berth::Status decoded = berth::http::DecodeBody(name, kLimit, &body);
  if (!decoded.ok() && decoded.code() != berth::Status::Code::kInvalidArgument &&
      decoded.code() != berth::Status::Code::kResourceExhausted) {
    Fail("unexpected status " + decoded.ToString());
  }
  if (decoded.ok() && body.size() > kLimit) Fail("decoded body over the limit");
  return 0;
}
