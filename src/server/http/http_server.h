// HttpServer: the asynchronous HTTP/1.1 transport (Boost.Beast on Asio).
//
// A fixed pool of threads runs one io_context; each connection is a strand,
// so an idle keep-alive connection costs a socket and a buffer, no thread.
// Request bodies over `max_body_bytes` are refused with 413 before they are
// read. Requests go to the Router; responses may be produced on any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "server/http/router.h"

namespace berth::http {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;              // 0: pick a free port (see port())
  int threads = 2;
  uint64_t max_body_bytes = 64ull << 20;
  std::chrono::seconds idle_timeout{65};
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
