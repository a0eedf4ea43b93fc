#include "server/http/http_framing.h"

#include <boost/beast/core/string.hpp>

#include <string>

namespace berth::http {

namespace beast = boost::beast;
namespace bhttp = beast::http;

Status CheckFraming(const BeastRequest& head) {
  int transfer_encodings = 0;
  for (auto it = head.find(bhttp::field::transfer_encoding);
       it != head.end() && it->name() == bhttp::field::transfer_encoding; ++it) {
    ++transfer_encodings;
    const beast::string_view value = it->value();
    if (!beast::iequals(value, "chunked")) {
      constexpr size_t kShown = 64;
      return Status::InvalidArgument(
          "Transfer-Encoding '" + std::string(value.substr(0, kShown)) +
          (value.size() > kShown ? "...'" : "'") + " is not supported: only 'chunked' is");
    }
  }
  if (transfer_encodings > 1) {
    return Status::InvalidArgument("more than one Transfer-Encoding header");
  }
  if (transfer_encodings == 1 && head.find(bhttp::field::content_length) != head.end()) {
    return Status::InvalidArgument(
        "a request may not have both Transfer-Encoding and Content-Length");
  }
  return Status::Ok();
}

bool ExpectsContinue(const BeastRequest& head) {
  if (head.version() < 11) return false;
  auto it = head.find(bhttp::field::expect);
  return it != head.end() && beast::iequals(it->value(), "100-continue");
}

}  // namespace berth::http
