#include "net/http_client.h"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "core/model_name.h"
#include "core/version.h"
#include "net/tls_files.h"

namespace berth::net {
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
  if (scheme != "http" && scheme != "https") {
    return invalid("unsupported scheme '" + PrintableExcerpt(scheme) +
                   "'; use http://HOST[:PORT] or https://HOST[:PORT]");
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
  out.tls = scheme == "https";
  if (out.tls) out.port = 443;
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

struct TlsContext {
  asio::ssl::context context{asio::ssl::context::tls_client};
  std::string cert_file;  // the client certificate sent when asked; empty: none
};

namespace {

// The slot of each connection's SSL object that records whether the server
// asked for a client certificate (mutual TLS).
int CertificateRequestedSlot() {
  static const int slot = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return slot;
}

// OpenSSL calls this on a client when the server asks for its certificate
// (TLS's CertificateRequest), whether the client has one or not.
int NoteCertificateRequest(SSL* ssl, void* /*arg*/) {
  static char requested;
  SSL_set_ex_data(ssl, CertificateRequestedSlot(), &requested);
  return 1;
}

// The CAs an https:// client trusts (`tls.ca_file`'s, or the system's), and
// the certificate it shows when asked.
StatusOr<std::shared_ptr<TlsContext>> MakeTlsContext(const TlsFiles& files) {
  if (files.cert_file.empty() && !files.key_file.empty()) {
    return Status::InvalidArgument("a client key ('" + PrintableExcerpt(files.key_file) +
                                   "') goes with a client certificate: give --cert too");
  }
  auto tls = std::make_shared<TlsContext>();
  beast::error_code ec;
  tls->context.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                               asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                               asio::ssl::context::no_tlsv1_1,
                           ec);
  if (files.ca_file.empty()) {
    tls->context.set_default_verify_paths(ec);
    if (ec) return Status::InvalidArgument("cannot read the system's CA certificates: " + ec.message());
  } else {
    tls->context.load_verify_file(files.ca_file, ec);
    if (ec) {
      return Status::InvalidArgument("cannot read the CA file '" +
                                     PrintableExcerpt(files.ca_file) + "': " + ec.message());
    }
  }
  tls->context.set_verify_mode(asio::ssl::verify_peer);
  if (!files.cert_file.empty()) {
    // Read now, so that an unreadable file or a key of another certificate
    // is said before connecting, not as a failed handshake.
    const bool key_apart = !files.key_file.empty();
    RETURN_IF_ERROR(UseCertificateAndKey(
        tls->context.native_handle(), files.cert_file, key_apart ? files.key_file : files.cert_file,
        {.certificate = "the client certificate",
         .key = key_apart ? "the client key" : "the client key (none given: looked for in the "
                                               "certificate's file)"}));
    tls->cert_file = files.cert_file;
  }
  SSL_CTX_set_cert_cb(tls->context.native_handle(), NoteCertificateRequest, nullptr);
  return tls;
}

// Why a handshake failed: OpenSSL's verdict on the certificate when it was
// the certificate.
std::string HandshakeError(SSL* ssl, const beast::error_code& ec) {
  const long verdict = SSL_get_verify_result(ssl);
  if (verdict != X509_V_OK) {
    return std::string("the server's certificate is not trusted: ") +
           X509_verify_cert_error_string(verdict);
  }
  return ec.message();
}

// Whether `ec` is a TLS alert from the server about the client's
// certificate (TLS 1.2 servers often send a bare handshake_failure).
bool CertificateAlert(const beast::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return false;
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      return true;
    default:
      return false;
  }
}

// Why an exchange with a server that asked for a client certificate failed
// with `ec` before any answer, when the certificate explains it: none was
// given (the server then alerts or just closes), or the server refused the
// one given (an alert about it). With TLS 1.3 either comes after the
// handshake, in place of the answer. nullopt when the server asked for no
// certificate, or for any other failure (a timeout).
std::optional<std::string> ClientCertificateRefusal(SSL* ssl, const TlsContext& tls,
                                                    const beast::error_code& ec) {
  if (SSL_get_ex_data(ssl, CertificateRequestedSlot()) == nullptr) return std::nullopt;
  const bool alert = CertificateAlert(ec);
  if (tls.cert_file.empty()) {
    if (!alert && ec != asio::ssl::error::stream_truncated && ec != asio::error::eof &&
        ec != asio::error::connection_reset && ec != bhttp::error::end_of_stream) {
      return std::nullopt;
    }
    return std::string(
        "the server asks for a client certificate (mutual TLS) and none was given");
  }
  if (!alert) return std::nullopt;
  return "the server refused the client certificate '" + PrintableExcerpt(tls.cert_file) + "' (" +
         ec.message() + "): is it signed by a CA that the server trusts (its client CA)?";
}

// Connects `stream` (a tcp_stream, or an ssl_stream over one made from
// `tls`, handshaken here), sends `request` and reads the answer, all within
// the stream's deadline.
template <typename Stream>
StatusOr<HttpResponse> Exchange(asio::io_context& ioc, Stream& stream,
                                const tcp::resolver::results_type& endpoints, const ServerUrl& url,
                                std::chrono::milliseconds timeout, const TlsContext* tls,
                                bhttp::request<bhttp::string_body>& request) {
  constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
  const std::string within =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s";
  // Asynchronous operations run to completion one at a time: that is what
  // lets tcp_stream's one deadline cover the whole exchange, which blocking
  // socket calls would not honour.
  const auto run = [&ioc] {
    ioc.run();
    ioc.restart();
  };
  beast::error_code ec;
  beast::tcp_stream& tcp_layer = beast::get_lowest_layer(stream);
  tcp_layer.expires_after(timeout);
  tcp_layer.async_connect(endpoints, [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
  run();
  if (ec == asio::error::connection_refused) {
    return Status::Unavailable("cannot connect to " + url.text +
                               ": connection refused (is a Berth server running there?)");
  }
  if (ec == beast::error::timeout) {
    return Status::Unavailable("cannot connect to " + url.text + ": no answer within " + within);
  }
  if (ec) return Status::Unavailable("cannot connect to " + url.text + ": " + ec.message());

  if constexpr (kTls) {
    stream.async_handshake(asio::ssl::stream_base::client, [&ec](beast::error_code e) { ec = e; });
    run();
    if (ec == beast::error::timeout) {
      return Status::Unavailable("no TLS handshake with " + url.text + " within " + within);
    }
    if (ec) {
      std::optional<std::string> refusal =
          ClientCertificateRefusal(stream.native_handle(), *tls, ec);
      return Status::Unavailable("TLS handshake with " + url.text + " failed: " +
                                 refusal.value_or(HandshakeError(stream.native_handle(), ec)));
    }
  }

  bhttp::async_write(stream, request, [&ec](beast::error_code e, size_t) { ec = e; });
  run();
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(HttpClient::kMaxResponseBytes);
  // A server may answer (e.g. 413) and close before reading the whole
  // request; its answer is still worth reading, so a write error is reported
  // only if no answer follows.
  const beast::error_code write_error = ec;
  ec = {};
  bhttp::async_read(stream, buffer, parser, [&ec](beast::error_code e, size_t) { ec = e; });
  run();
  if constexpr (kTls) {
    if (ec && !parser.got_some()) {
      if (auto refusal = ClientCertificateRefusal(stream.native_handle(), *tls, ec)) {
        return Status::Unavailable("TLS with " + url.text + " failed: " + *refusal);
      }
    }
    // A server that closes without TLS's close_notify ends an answer that
    // runs to the end of the connection as a plain close would.
    if (ec == asio::ssl::error::stream_truncated) {
      ec = {};
      parser.put_eof(ec);
      if (ec) ec = bhttp::error::partial_message;
    }
  }
  if (ec == beast::error::timeout) {
    return Status::Unavailable("no answer from " + url.text + " within " + within);
  }
  if (ec == bhttp::error::body_limit) {
    return Status::Unavailable("the answer from " + url.text + " is larger than " +
                               std::to_string(HttpClient::kMaxResponseBytes >> 20) + " MiB");
  }
  if (ec && write_error) {
    return Status::Unavailable("sending the request to " + url.text + " failed: " +
                               write_error.message());
  }
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
      ec == asio::error::connection_reset) {
    return Status::Unavailable(url.text + " closed the connection without answering");
  }
  if (ec == bhttp::error::partial_message) {
    return Status::Unavailable(url.text + " closed the connection in the middle of its answer");
  }
  if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category()) {
    return Status::Unavailable("the answer from " + url.text + " is not HTTP/1.1 (" +
                               ec.message() + "): is that a Berth server's REST port?");
  }
  if (ec) {
    return Status::Unavailable("reading the answer from " + url.text + " failed: " +
                               ec.message());
  }
  // Best effort; a TLS connection is closed without its close_notify: the
  // answer is read whole already.
  tcp_layer.socket().shutdown(tcp::socket::shutdown_both, ec);

  HttpResponse response;
  response.status = static_cast<int>(parser.get().result_int());
  response.body = std::move(parser.get().body());
  return response;
}

}  // namespace

HttpClient::HttpClient(ServerUrl url, std::chrono::milliseconds timeout,
                       const std::string& ca_file)
    : HttpClient(std::move(url), timeout,
                 TlsFiles{.ca_file = ca_file, .cert_file = {}, .key_file = {}}) {}

HttpClient::HttpClient(ServerUrl url, std::chrono::milliseconds timeout, const TlsFiles& files)
    : url_(std::move(url)), timeout_(timeout) {
  if (!url_.tls) return;
  auto tls = MakeTlsContext(files);
  if (tls.ok()) {
    tls_ = std::move(tls).value();
  } else {
    tls_status_ = tls.status();
  }
}

HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

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
  if (!tls_status_.ok()) return tls_status_;
  HttpHeaders headers = default_headers_;
  headers.insert(headers.end(), extra_headers.begin(), extra_headers.end());
  for (const auto& [name, value] : headers) {
    if ((name + value).find_first_of("\r\n") != std::string::npos) {
      return Status::InvalidArgument("the header " + PrintableExcerpt(name) +
                                     " holds a line break");
    }
  }
  asio::io_context ioc;
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  const tcp::resolver::results_type endpoints =
      resolver.resolve(url_.host, std::to_string(url_.port), ec);
  if (ec) {
    return Status::Unavailable("cannot resolve the host of " + url_.text + ": " + ec.message());
  }

  const bool has_body = method != "GET";
  bhttp::request<bhttp::string_body> request{bhttp::string_to_verb({method.data(), method.size()}),
                                             url_.path_prefix + std::string(target), 11};
  std::string host = url_.host.find(':') == std::string::npos ? url_.host : "[" + url_.host + "]";
  if (url_.port != (url_.tls ? 443 : 80)) host += ":" + std::to_string(url_.port);
  request.set(bhttp::field::host, host);
  request.set(bhttp::field::user_agent, std::string("berth/") + kBerthVersion);
  request.set(bhttp::field::accept, "application/json");
  for (const auto& [name, value] : headers) request.set(name, value);
  if (has_body) {
    request.set(bhttp::field::content_type, std::string(content_type));
    request.body() = std::move(body);
  }
  request.prepare_payload();

  if (!url_.tls) {
    beast::tcp_stream stream(ioc);
    return Exchange(ioc, stream, endpoints, url_, timeout_, nullptr, request);
  }
  // The context is shared and never changed: each connection takes its own
  // SSL object from it.
  beast::ssl_stream<beast::tcp_stream> stream(ioc, tls_->context);
  SSL* ssl = stream.native_handle();
  asio::ip::make_address(url_.host, ec);
  if (ec) {
    // A name: sent for SNI, and the certificate must name it.
    SSL_set_tlsext_host_name(ssl, url_.host.c_str());
    SSL_set1_host(ssl, url_.host.c_str());
  } else {
    // An IP literal: no SNI (RFC 6066); the certificate must list the address.
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url_.host.c_str());
  }
  return Exchange(ioc, stream, endpoints, url_, timeout_, tls_.get(), request);
}

std::string CaFileOrDefault(const std::string& given) {
  if (!given.empty()) return given;
  const char* env = std::getenv("BERTH_CA_FILE");
  return env != nullptr ? env : "";
}

StatusOr<TlsFiles> TlsFilesOrDefault(const TlsFiles& given) {
  const auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value != nullptr ? value : "");
  };
  TlsFiles files = given;
  files.ca_file = CaFileOrDefault(given.ca_file);
  if (!given.key_file.empty() && given.cert_file.empty()) {
    return Status::InvalidArgument("--key goes with --cert (the client certificate)");
  }
  if (given.cert_file.empty()) {
    files.cert_file = env("BERTH_CERT_FILE");
    files.key_file = env("BERTH_KEY_FILE");
    if (files.cert_file.empty() && !files.key_file.empty()) {
      return Status::InvalidArgument(
          "$BERTH_KEY_FILE goes with $BERTH_CERT_FILE (the client certificate)");
    }
  }
  return files;
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

}  // namespace berth::net
