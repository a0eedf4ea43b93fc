// HttpServer: the asynchronous HTTP/1.1 transport (Boost.Beast on Asio).
//
// A fixed pool of threads runs one io_context; each connection is a strand,
// so an idle keep-alive connection costs a socket and a buffer, no thread.
// Requests go to the Router; responses may be produced on any thread.
//
// What the transport refuses itself, before a route sees the request:
// - a header over `max_header_bytes`: 431, and the connection is closed;
// - a header not whole within `header_timeout`, or a body slower than
//   `min_body_rate`: the connection is closed (slowloris, slow body);
// - a body over `max_body_bytes` (declared or, chunked, as it arrives): 413,
//   before the body is read; `Expect: 100-continue` is answered "100
//   Continue" only once the declared size fits, so such a client never sends
//   a body that would be refused;
// - Transfer-Encoding other than exactly "chunked": 400 (a coding list such
//   as "gzip, chunked" would be framed differently by another hop);
// - a body that does not fit the shared InflightBudget (declared length,
//   each chunk, and the decoded size of a compressed body): 503, and the
//   connection is closed if the body was not read;
// - connections beyond `max_connections`: answered 503 and closed at once
//   (logged at most once per 5 s, with a count).
// When accept() fails for want of file descriptors (EMFILE/ENFILE) the
// acceptor pauses, 10 ms doubling to 1 s, and resumes as soon as a connection
// closes; the failure is logged at most once per 5 s, with a count.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/inference_service.h"
#include "core/status.h"
#include "server/http/connection_counters.h"
#include "server/http/router.h"
#include "server/inflight_budget.h"
#include "server/tls/tls_config.h"

namespace berth::http {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;              // 0: pick a free port (see port())
  int threads = 2;
  uint64_t max_body_bytes = 64ull << 20;
  // How long a keep-alive connection may wait for the first byte of its next
  // request, and a client may take to read an answer, before it is closed.
  std::chrono::seconds idle_timeout{65};
  // A request's header must be whole this long after its first byte (the
  // accept, or the end of the TLS handshake, for a connection's first
  // request; the handshake has as long): slowloris clients are closed.
  std::chrono::seconds header_timeout{10};
  // >0: a body must arrive at this many bytes per second on average, after a
  // grace of header_timeout, or the connection is closed. 0: a body must
  // arrive within idle_timeout of each read.
  uint64_t min_body_rate = 1024;
  // Largest request header (request line and fields): larger is 431.
  uint32_t max_header_bytes = 16 * 1024;
  // Non-null: counts the connections cut off by the limits above. Not
  // owned; must outlive the HttpServer.
  ConnectionCounters* counters = nullptr;
  // >0: connections beyond this many open at once are refused (503).
  int64_t max_connections = 0;
  // Bytes held by requests in flight; null: no cap. Not owned; must outlive
  // the HttpServer.
  InflightBudget* inflight_budget = nullptr;
  // Non-null: connections speak TLS with the context current when each is
  // accepted. Not owned; must outlive the HttpServer.
  TlsContext* tls = nullptr;
  // Set: a request for which it returns true (method, raw target) has its
  // body streamed to a file in upload_dir (HttpRequest::upload), up to
  // max_upload_bytes (413 beyond), instead of read into memory.
  std::function<bool(std::string_view method, std::string_view target)> streams_to_file;
  std::filesystem::path upload_dir;
  uint64_t max_upload_bytes = 0;
  // Told of every request answered an error before it reached the core
  // (server/refusal_log.h): the access log. May be null; not owned.
  InferenceObserver* refusals = nullptr;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, const Router* router);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the threads.
  Status Start();
  // Stops accepting, waits up to `grace` for in-flight requests to finish,
  // answers 503 ("the server is shutting down") to each request still out in
  // the core (its late response is dropped) and gives those answers up to a
  // second to be written, then closes every connection and joins the
  // threads. Does not wait for the core.
  void Stop(std::chrono::milliseconds grace);

  uint16_t port() const { return bound_port_; }

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t bound_port_ = 0;
};

}  // namespace berth::http
