// Counts of REST connections the transport cut off for breaking a limit,
// rendered by GET /metrics. The HttpServer increments them from its
// threads; the metrics route reads them. Owned by the Server.
#pragma once

#include <atomic>
#include <cstdint>

namespace berth::http {

struct ConnectionCounters {
  // The header (or the TLS handshake) was not whole within
  // --header-timeout-secs: slowloris.
  std::atomic<uint64_t> header_timeouts{0};
  // The body came slower than --min-body-rate.
  std::atomic<uint64_t> slow_bodies{0};
  // The header was over --max-header-bytes (answered 431).
  std::atomic<uint64_t> headers_too_large{0};
};

}  // namespace berth::http
