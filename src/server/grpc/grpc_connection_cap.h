// GrpcConnectionCap: a cap on the connections the gRPC server holds open at
// once (--grpc-max-connections; by default its share of the descriptors
// under the open-file limit, http/connection_cap.h).
//
// The gRPC this builds against (1.51) has no channel argument for it
// (GRPC_ARG_MAX_ALLOWED_INCOMING_CONNECTIONS came in a later release, and is
// used when the headers define it), and a ResourceQuota bounds threads and
// memory, not connections. What 1.51 offers is a socket mutator, called with
// each accepted connection's descriptor before gRPC reads from it. Refusing
// there (returning false) would stop gRPC's acceptor for the whole port, so
// a connection over the cap is shut down instead (with SO_LINGER 0) and the
// mutator lets gRPC go on: gRPC reads EOF at once and closes the descriptor,
// and the client sees its connection reset before any HTTP/2 frame.
//
// gRPC does not say when a connection closes, so the live ones are kept as
// descriptor -> socket inode: a descriptor that was closed, or reused for
// another file, no longer shows that inode. That check runs only at the
// cap, at most once per kPruneInterval, so a flood of connections over the
// cap costs one fstat each; a slot freed is seen within that interval.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "core/thread_annotations.h"
#include "server/log_limiter.h"

namespace grpc {
class ServerBuilder;
}  // namespace grpc

namespace berth::rpc {

class GrpcConnectionCap {
 public:
  // `max_connections` > 0.
  explicit GrpcConnectionCap(int64_t max_connections);
  ~GrpcConnectionCap();
  GrpcConnectionCap(const GrpcConnectionCap&) = delete;
  GrpcConnectionCap& operator=(const GrpcConnectionCap&) = delete;

  // Applies the cap to the server `builder` builds. The state it needs is
  // shared with gRPC, so this object may go before the server does.
  void Install(grpc::ServerBuilder* builder);

  // Connections closed at once for being over the cap. Thread-safe.
  uint64_t refused() const;

  // What the cap knows, shared by this object and the mutator gRPC holds.
  class State {
   public:
    explicit State(int64_t max);
    // Whether the connection just accepted on `fd` may stay; if not, it has
    // been shut down.
    bool Admit(int fd) LOCKS_EXCLUDED(mu_);
    uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
    size_t max() const { return max_; }

   private:
    // Forgets the descriptors (other than `keep`) that no longer hold the
    // socket they were admitted with; at most once per kPruneInterval.
    void Prune(int keep) EXCLUSIVE_LOCKS_REQUIRED(mu_);

    const size_t max_;
    std::atomic<uint64_t> refused_{0};
    std::mutex mu_;
    std::unordered_map<int, ino_t> live_ GUARDED_BY(mu_);  // descriptor -> socket inode
    bool pruned_ GUARDED_BY(mu_) = false;
    std::chrono::steady_clock::time_point pruned_at_ GUARDED_BY(mu_);
    LogLimiter refusal_log_ GUARDED_BY(mu_);
  };

 private:
  std::shared_ptr<State> state_;
};

}  // namespace berth::rpc
