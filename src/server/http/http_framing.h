// The framing rules the HTTP transport applies to a request's head, before
// it reads the body. Kept apart from the transport so that they are unit
// tested and fuzzed without a socket.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "core/status.h"

namespace berth::http {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;

// OK, or InvalidArgument unless Transfer-Encoding is absent or exactly one
// "chunked" (any case) without a Content-Length. Beast itself takes a coding
// list ending in "chunked" as chunked (dropping the codings before it) and
// ignores a list without it (framing by Content-Length, or as no body):
// another hop may frame the same bytes differently, so such a request is
// refused rather than guessed at.
Status CheckFraming(const BeastRequest& head);

// Whether the client waits for "100 Continue" before it sends the body: an
// HTTP/1.1 request with "Expect: 100-continue" (RFC 9110 10.1.1: an HTTP/1.0
// request's expectation is ignored).
bool ExpectsContinue(const BeastRequest& head);

}  // namespace berth::http
