#include "cli/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <utility>

#include "core/model_name.h"
#include "core/version.h"

namespace berth::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// Characters allowed in a host name or IPv4 literal; IPv6 literals add ':'
// and '%' (a zone) inside their brackets.
bool IsHostChar(unsigned char c) { return std::isalnum(c) || c == '-' || c == '.' || c == '_'; }

std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

StatusOr<ServerUrl> ParseServerUrl(std::string_view url) {
  const std::string quoted = "'" + PrintableExcerpt(url, 200) + "'";
  const auto invalid = [&](const std::string& why) {
    return Status::InvalidArgument("invalid URL " + quoted + ": " + why);
  };
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return invalid("expected http://HOST[:PORT], e.g. http://127.0.0.1:8000");
  }
  const std::string scheme = Lowercase(url.substr(0, scheme_end));
  if (scheme == "https") {
    return invalid("TLS (https://) is not supported yet; use http://HOST[:PORT]");
  }
  if (scheme != "http") {
    return invalid("unsupported scheme '" + PrintableExcerpt(scheme) + "'; use http://HOST[:PORT]");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  for (unsigned char c : rest) {
    if (c <= ' ' || c >= 0x7F) return invalid("it contains a space, control or non-ASCII byte");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return invalid("a query or fragment is not allowed");
  }
  const size_t path_start = rest.find('/');
  std::string_view authority = rest.substr(0, path_start);
  std::string_view path = path_start == std::string_view::npos ? "" : rest.substr(path_start);
  if (authority.find('@') != std::string_view::npos) return invalid("user info is not supported");

  ServerUrl out;
  out.text = std::string(url);
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid("'[' without ']'");
    out.host = std::string(authority.substr(1, close - 1));
    for (unsigned char c : out.host) {
      if (!std::isxdigit(c) && c != ':' && c != '.' && c != '%') {
        return invalid("bad IPv6 address");
      }
    }
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return invalid("unexpected text after ']'");
      port_text = after.substr(1);
      if (port_text.empty()) return invalid("empty port");
    }
  } else {
    const size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return invalid("empty port");
    }
    for (unsigned char c : out.host) {
      if (!IsHostChar(c)) return invalid("bad character in the host name");
    }
  }
  if (out.host.empty()) return invalid("no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return invalid("the port must be a number from 1 to 65535");
    }
    out.port = static_cast<uint16_t>(port);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out.path_prefix = std::string(path);
  return out;
}

std::string EncodePathSegment(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(segment.size());
  for (unsigned char c : segment) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

HttpClient::HttpClient(ServerUrl url, std::chrono::milliseconds timeout)
    : url_(std::move(url)), timeout_(timeout) {}

StatusOr<HttpResponse> HttpClient::Get(std::string_view target) const {
  return Send("GET", target, {}, {}, {});
}

StatusOr<HttpResponse> HttpClient::Post(std::string_view target,
                                        std::string_view json_body) const {
  return Send("POST", target, std::string(json_body), "application/json", {});
}

StatusOr<HttpResponse> HttpClient::Delete(std::string_view target,
                                          std::string_view json_body) const {
  return Send("DELETE", target, std::string(json_body), "application/json", {});
}

StatusOr<HttpResponse> HttpClient::Post(std::string_view target, std::string body,
                                        std::string_view content_type,
                                        const HttpHeaders& headers) const {
  return Send("POST", target, std::move(body), content_type, headers);
}

StatusOr<HttpResponse> HttpClient::Send(std::string_view method, std::string_view target,
                                        std::string body,
                                        std::string_view content_type,
                                        const HttpHeaders& extra_headers) const {
  HttpHeaders headers = default_headers_;
  headers.insert(headers.end(), extra_headers.begin(), extra_headers.end());
  for (const auto& [name, value] : headers) {
    if ((name + value).find_first_of("\r\n") != std::string::npos) {
      return Status::InvalidArgument("the header " + PrintableExcerpt(name) +
                                     " holds a line break");
    }
  }
  const std::string within =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout_).count()) + " s";
  asio::io_context ioc;
  beast::error_code ec;

  tcp::resolver resolver(ioc);
  const tcp::resolver::results_type endpoints =
      resolver.resolve(url_.host, std::to_string(url_.port), ec);
  if (ec) {
    return Status::Unavailable("cannot resolve the host of " + url_.text + ": " + ec.message());
  }

  // Asynchronous operations run to completion one at a time: that is what
  // lets tcp_stream's one deadline cover the whole exchange, which blocking
  // socket calls would not honour.
  const auto run = [&ioc] {
    ioc.run();
    ioc.restart();
  };
  beast::tcp_stream stream(ioc);
  stream.expires_after(timeout_);
  stream.async_connect(endpoints, [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
  run();
  if (ec == asio::error::connection_refused) {
    return Status::Unavailable("cannot connect to " + url_.text +
                               ": connection refused (is a Berth server running there?)");
  }
  if (ec == beast::error::timeout) {
    return Status::Unavailable("cannot connect to " + url_.text + ": no answer within " + within);
  }
  if (ec) return Status::Unavailable("cannot connect to " + url_.text + ": " + ec.message());

  const bool has_body = method != "GET";
  bhttp::request<bhttp::string_body> request{bhttp::string_to_verb({method.data(), method.size()}),
                                             url_.path_prefix + std::string(target), 11};
  std::string host = url_.host.find(':') == std::string::npos ? url_.host : "[" + url_.host + "]";
  if (url_.port != 80) host += ":" + std::to_string(url_.port);
  request.set(bhttp::field::host, host);
  request.set(bhttp::field::user_agent, std::string("berth/") + kBerthVersion);
  request.set(bhttp::field::accept, "application/json");
  for (const auto& [name, value] : headers) request.set(name, value);
  if (has_body) {
    request.set(bhttp::field::content_type, std::string(content_type));
    request.body() = std::move(body);
  }
  request.prepare_payload();

  bhttp::async_write(stream, request, [&ec](beast::error_code e, size_t) { ec = e; });
  run();
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxResponseBytes);
  // A server may answer (e.g. 413) and close before reading the whole
  // request; its answer is still worth reading, so a write error is reported
  // only if no answer follows.
  const beast::error_code write_error = ec;
  ec = {};
  bhttp::async_read(stream, buffer, parser, [&ec](beast::error_code e, size_t) { ec = e; });
  run();
  if (ec == beast::error::timeout) {
    return Status::Unavailable("no answer from " + url_.text + " within " + within);
  }
  if (ec == bhttp::error::body_limit) {
    return Status::Unavailable("the answer from " + url_.text + " is larger than " +
                               std::to_string(kMaxResponseBytes >> 20) + " MiB");
  }
  if (ec && write_error) {
    return Status::Unavailable("sending the request to " + url_.text + " failed: " +
                               write_error.message());
  }
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset) {
    return Status::Unavailable(url_.text + " closed the connection without answering");
  }
  if (ec == bhttp::error::partial_message) {
    return Status::Unavailable(url_.text + " closed the connection in the middle of its answer");
  }
  if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
    return Status::Unavailable("the answer from " + url_.text + " is not HTTP/1.1 (" +
                               ec.message() + "): is that a Berth server's REST port?");
  }
  if (ec) {
    return Status::Unavailable("reading the answer from " + url_.text + " failed: " +
                               ec.message());
  }
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);  // best effort

  HttpResponse response;
  response.status = static_cast<int>(parser.get().result_int());
  response.body = std::move(parser.get().body());
  return response;
}

Status AddApiKey(const std::string& api_key, HttpClient* client) {
  std::string key = api_key;
  if (key.empty()) {
    const char* env = std::getenv("BERTH_API_KEY");
    if (env != nullptr) key = env;
  }
  if (key.empty()) return Status::Ok();
  if (key.find_first_of("\r\n") != std::string::npos) {
    return Status::InvalidArgument("the API key holds a line break");
  }
  client->AddHeader("Authorization", "Bearer " + key);
  return Status::Ok();
}

}  // namespace berth::cli
