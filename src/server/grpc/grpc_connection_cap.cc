#include "server/grpc/grpc_connection_cap.h"

#include <grpc/grpc.h>
#include <grpc/support/sync.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/server_builder_option.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/logging.h"

#ifndef GRPC_ARG_MAX_ALLOWED_INCOMING_CONNECTIONS
#include <grpcpp/version_info.h>
#if GRPC_CPP_VERSION_MAJOR != 1 || GRPC_CPP_VERSION_MINOR != 51
#error "the socket mutator layout below was copied from gRPC 1.51: check it against this gRPC's src/core/lib/iomgr/socket_mutator.h, then widen this guard"
#endif
// gRPC's socket mutator is declared only in its internal headers
// (src/core/lib/iomgr/socket_mutator.h), which Debian does not install. The
// layout below is that of 1.51, unchanged since mutate_fd_2 was added; a
// gRPC new enough to change it has GRPC_ARG_MAX_ALLOWED_INCOMING_CONNECTIONS
// and never compiles this.
typedef enum {
  GRPC_FD_CLIENT_CONNECTION_USAGE,
  GRPC_FD_SERVER_LISTENER_USAGE,
  GRPC_FD_SERVER_CONNECTION_USAGE,
} grpc_fd_usage;

typedef struct {
  int fd;
  grpc_fd_usage usage;
} grpc_mutate_socket_info;

struct grpc_socket_mutator_vtable {
  bool (*mutate_fd)(int fd, grpc_socket_mutator* mutator);
  int (*compare)(grpc_socket_mutator* a, grpc_socket_mutator* b);
  void (*destroy)(grpc_socket_mutator* mutator);
  bool (*mutate_fd_2)(const grpc_mutate_socket_info* info, grpc_socket_mutator* mutator);
};

struct grpc_socket_mutator {
  const grpc_socket_mutator_vtable* vtable;
  gpr_refcount refcount;
};
#endif

namespace berth::rpc {

namespace {

// How often, at most, the live connections are checked for ones gRPC has
// closed (only while at the cap).
constexpr std::chrono::milliseconds kPruneInterval{100};
// A refused connection is logged at most once per interval.
constexpr std::chrono::seconds kRefusalLogInterval{5};

}  // namespace

GrpcConnectionCap::State::State(int64_t max)
    : max_(static_cast<size_t>(max)), refusal_log_(kRefusalLogInterval) {}

bool GrpcConnectionCap::State::Admit(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return true;  // gRPC fails on it by itself
  {
    std::lock_guard lock(mu_);
    // A descriptor number seen before was closed and reused: overwritten.
    live_[fd] = st.st_ino;
    if (live_.size() > max_) Prune(fd);
    if (live_.size() <= max_) return true;
    live_.erase(fd);
    refused_.fetch_add(1, std::memory_order_relaxed);
    if (uint64_t unlogged = 0; refusal_log_.Due(&unlogged)) {
      LOG_WARN("gRPC connection refused: at the connection limit",
               {{"max_connections", std::to_string(max_)},
                {"refusals_not_logged", std::to_string(unlogged)}});
    }
  }
  // A reset, not a FIN, when gRPC closes it: the client learns at once and
  // no TIME_WAIT is left here.
  const linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  shutdown(fd, SHUT_RDWR);
  return false;
}

void GrpcConnectionCap::State::Prune(int keep) {
  const auto now = std::chrono::steady_clock::now();
  if (pruned_ && now - pruned_at_ < kPruneInterval) return;
  pruned_ = true;
  pruned_at_ = now;
  for (auto it = live_.begin(); it != live_.end();) {
    struct stat st {};
    if (it->first != keep && (fstat(it->first, &st) != 0 || st.st_ino != it->second)) {
      it = live_.erase(it);
    } else {
      ++it;
    }
  }
}

namespace {

#ifndef GRPC_ARG_MAX_ALLOWED_INCOMING_CONNECTIONS
// The mutator gRPC holds (reference-counted by gRPC, freed by destroy).
struct CapMutator : grpc_socket_mutator {
  std::shared_ptr<GrpcConnectionCap::State> state;
};

// Every mutator gRPC hands these functions is a CapMutator: the vtable is
// only ever installed on one.
CapMutator* Of(grpc_socket_mutator* m) { return static_cast<CapMutator*>(m); }

bool MutateFd(int /*fd*/, grpc_socket_mutator* /*m*/) { return true; }

bool MutateFd2(const grpc_mutate_socket_info* info, grpc_socket_mutator* m) {
  // Always true: false would close gRPC's acceptor (see the header).
  if (info->usage == GRPC_FD_SERVER_CONNECTION_USAGE) Of(m)->state->Admit(info->fd);
  return true;
}

int Compare(grpc_socket_mutator* a, grpc_socket_mutator* b) {
  const std::less<grpc_socket_mutator*> less;
  return a == b ? 0 : (less(a, b) ? -1 : 1);
}

void Destroy(grpc_socket_mutator* m) { delete Of(m); }

constexpr grpc_socket_mutator_vtable kCapVtable = {MutateFd, Compare, Destroy, MutateFd2};

class CapOption : public grpc::ServerBuilderOption {
 public:
  explicit CapOption(std::shared_ptr<GrpcConnectionCap::State> state) : state_(std::move(state)) {}
  void UpdateArguments(grpc::ChannelArguments* args) override {
    auto* mutator = new CapMutator{{&kCapVtable, {}}, state_};
    gpr_ref_init(&mutator->refcount, 1);
    args->SetSocketMutator(mutator);  // takes the reference
  }
  void UpdatePlugins(
      std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* /*plugins*/) override {}

 private:
  std::shared_ptr<GrpcConnectionCap::State> state_;
};
#endif

}  // namespace

GrpcConnectionCap::GrpcConnectionCap(int64_t max_connections)
    : state_(std::make_shared<State>(max_connections)) {}

GrpcConnectionCap::~GrpcConnectionCap() = default;

void GrpcConnectionCap::Install(grpc::ServerBuilder* builder) {
#ifdef GRPC_ARG_MAX_ALLOWED_INCOMING_CONNECTIONS
  builder->AddChannelArgument(GRPC_ARG_MAX_ALLOWED_INCOMING_CONNECTIONS,
                              static_cast<int>(std::min<size_t>(state_->max(), INT_MAX)));
#else
  builder->SetOption(std::make_unique<CapOption>(state_));
#endif
}

uint64_t GrpcConnectionCap::refused() const { return state_->refused(); }

}  // namespace berth::rpc
