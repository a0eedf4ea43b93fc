// How many REST and gRPC connections the server holds open at once when the
// operator does not say (--max-connections 0 and --grpc-max-connections 0,
// the defaults).
//
// Every connection costs a file descriptor, and so does everything else the
// server does after start-up: SQLite's journal, a model load, a pushed
// artifact, the payload log, an outgoing webhook. A server that lets clients
// take the last descriptor fails those with EMFILE, far from the cause. So
// the soft RLIMIT_NOFILE is first raised to the hard limit (as Go's runtime
// does at start), then REST connections are capped below it, leaving
// headroom. The descriptors left for connections are split between the two
// front ends, so that together they can never take the headroom: beyond its
// cap a REST client gets a 503 it can retry elsewhere, a gRPC connection is
// closed at once (grpc/grpc_connection_cap.h).
#pragma once

#include <cstdint>

namespace berth::http {

struct OpenFileLimit {
  uint64_t before = 0;  // the soft limit the process started with
  uint64_t now = 0;     // the soft limit after raising it (RLIM_INFINITY: 0)
};

// Raises the soft limit on open files to the hard limit; returns both.
// On a platform that refuses, `now` is `before`.
OpenFileLimit RaiseOpenFileLimit();

// The descriptors kept free of connections under a limit of `limit`:
// an eighth of it, at least 64.
uint64_t DescriptorHeadroom(uint64_t limit);

// The connection cap for a soft limit of `limit` open files (0: unlimited,
// which gives 0, no cap): the limit less the headroom, at least 1.
int64_t AutomaticConnectionCap(uint64_t limit);

// The caps of the two front ends under a soft limit of `limit` open files.
// 0 requested: automatic. Both automatic: gRPC gets a quarter of
// AutomaticConnectionCap (a gRPC client multiplexes its calls over one
// connection, a REST client opens several), REST the rest. One requested:
// the other gets what the automatic total leaves, at least 1. Both
// requested: as asked (the caller warns if they exceed the automatic
// total). Under an unlimited `limit`, an automatic cap is 0: none.
struct ConnectionCaps {
  int64_t rest = 0;
  int64_t grpc = 0;
};
ConnectionCaps SplitConnectionCaps(uint64_t limit, int64_t rest_requested, int64_t grpc_requested);

}  // namespace berth::http
