// How many REST connections the server holds open at once when the operator
// does not say (--max-connections 0, the default).
//
// Every connection costs a file descriptor, and so does everything else the
// server does after start-up: SQLite's journal, a model load, a pushed
// artifact, the payload log, an outgoing webhook. A server that lets clients
// take the last descriptor fails those with EMFILE, far from the cause. So
// the soft RLIMIT_NOFILE is first raised to the hard limit (as Go's runtime
// does at start), then REST connections are capped below it, leaving
// headroom; beyond the cap a client gets a 503 it can retry elsewhere.
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

}  // namespace berth::http
