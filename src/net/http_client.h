// HttpClient: the small blocking HTTP/1.1 client that `berth models` and
// `berth keys` use to talk to a running server's admin API, the alerts'
// webhook to its receiver and the payload log to its sink (its own library,
// berth_http_client, which depends on the core only). One request per
// connection, one deadline per request; http:// or https:// (TLS 1.2+, the
// peer's certificate verified against the system's CAs or a CA file, SNI
// sent, the host name or IP address checked against the certificate; a
// client certificate for a server that wants mutual TLS).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace berth::net {

struct TlsContext;  // an OpenSSL client context (http_client.cc)

// A server's base address, from --url.
struct ServerUrl {
  std::string host;         // a name or an IP literal; IPv6 without brackets
  uint16_t port = 80;       // 443 by default for https://
  bool tls = false;         // https://
  std::string path_prefix;  // "" or "/some/prefix", never ending in '/'
  std::string text;         // the URL as given, for messages
};

// Parses "http[s]://HOST[:PORT][/PREFIX]" (an IPv6 HOST in brackets; PORT
// 80, or 443 for https, when omitted). InvalidArgument, saying what is
// wrong, for any other scheme, user info, a query or a fragment, an empty
// host or a port outside 1..65535.
StatusOr<ServerUrl> ParseServerUrl(std::string_view url);

// `segment` percent-encoded for use as one path segment: every byte outside
// RFC 3986's unreserved set (A-Z a-z 0-9 - . _ ~) becomes %XX, so a model
// name with '/', '?', '%' or spaces stays one segment.
std::string EncodePathSegment(std::string_view segment);

// The files an https:// client reads: whom it trusts and who it is.
struct TlsFiles {
  std::string ca_file;    // PEM CAs the server's certificate must chain to; empty: the system's
  std::string cert_file;  // PEM client certificate chain (mutual TLS); empty: none
  std::string key_file;   // PEM key of cert_file; empty: in cert_file itself
};

// Extra request header fields, name and value, sent as given.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  std::string body;
};

// Sends one request to `url` and returns the server's answer whatever its
// status; the caller decides what a 4xx means. Not thread-safe; cheap to
// construct. Each call opens a fresh connection and closes it afterwards.
class HttpClient {
 public:
  // Answers larger than this are refused rather than buffered.
  static constexpr size_t kMaxResponseBytes = 64 << 20;

  // `timeout` bounds connecting, the TLS handshake, sending and receiving
  // together (name resolution follows the system resolver's own timeouts).
  // An https:// URL's server must present a certificate that chains to
  // `ca_file` (PEM; empty: the system's CAs) and names the URL's host; the
  // CAs are read here, once (tls_status() says whether they could be).
  HttpClient(ServerUrl url, std::chrono::milliseconds timeout, const std::string& ca_file = "");
  // The same, and with `tls.cert_file`, that certificate and its key are
  // read here too and shown to a server that asks for one (mutual TLS).
  HttpClient(ServerUrl url, std::chrono::milliseconds timeout, const TlsFiles& tls);
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Whether the TLS context is usable (always OK for http://): an
  // InvalidArgument naming the file if the CAs, the client certificate or
  // its key could not be read, or if the key is not the certificate's, or a
  // key came without a certificate. Every request fails with it meanwhile.
  const Status& tls_status() const { return tls_status_; }

  // `target` starts with '/' and is already percent-encoded; the URL's path
  // prefix goes in front of it. Unavailable, with a message naming the URL,
  // when the host cannot be resolved, the connection is refused or cut, the
  // TLS handshake fails (an untrusted or mismatched certificate among
  // others; a server that wants a client certificate and got none, or
  // refused the one sent, is said to), the deadline passes, or the answer is
  // not HTTP or too large.
  StatusOr<HttpResponse> Get(std::string_view target) const;
  StatusOr<HttpResponse> Post(std::string_view target, std::string_view json_body) const;
  // A DELETE with a JSON body.
  StatusOr<HttpResponse> Delete(std::string_view target, std::string_view json_body) const;

  // A POST of `body` as `content_type`, with `headers` added (names and
  // values must not hold CR or LF). The body is sent whole with its
  // Content-Length; a server that refuses it early (413) still has its
  // answer read and returned.
  StatusOr<HttpResponse> Post(std::string_view target, std::string body,
                              std::string_view content_type, const HttpHeaders& headers) const;

  // Sends `name: value` with every request from now on (e.g. Authorization).
  void AddHeader(std::string name, std::string value) {
    default_headers_.emplace_back(std::move(name), std::move(value));
  }

 private:
  // `method` is GET (no body is sent), POST or DELETE.
  StatusOr<HttpResponse> Send(std::string_view method, std::string_view target, std::string body,
                              std::string_view content_type, const HttpHeaders& headers) const;

  ServerUrl url_;
  std::chrono::milliseconds timeout_;
  HttpHeaders default_headers_;
  std::shared_ptr<TlsContext> tls_;  // https:// only; shared by copies
  Status tls_status_;
};

// Sends `api_key` (or, when it is empty, $BERTH_API_KEY if set) as
// "Authorization: Bearer KEY" with every request of `client`.
// InvalidArgument, without quoting the key, if it holds a line break.
Status AddApiKey(const std::string& api_key, HttpClient* client);

// The CA file a command's https:// URL is checked against: `given` (its
// --ca-file), else $BERTH_CA_FILE (as the Python client reads it), else
// empty (the system's CAs).
std::string CaFileOrDefault(const std::string& given);

// The TLS files of a command's --url: `given`'s (--ca-file, --cert, --key),
// with $BERTH_CA_FILE for a missing CA file, and $BERTH_CERT_FILE and
// $BERTH_KEY_FILE when neither --cert nor --key is given. InvalidArgument
// for a key without a certificate (flags or variables).
StatusOr<TlsFiles> TlsFilesOrDefault(const TlsFiles& given);

}  // namespace berth::net
