// GrpcServer: the Open Inference Protocol (KServe v2) gRPC front end,
// service inference.GRPCInferenceService (grpc_service.proto), including
// Triton's repository extension (index, load, unload) and statistics
// extension (ModelStatistics).
//
// Built on gRPC's completion-queue API (grpc_unary_call.h) with a fixed pool
// of threads, like the HTTP front end: each thread polls its own completion
// queue and runs the handlers of the calls that arrive on it, so no thread is
// parked per call and a request answered inline never changes threads.
// Inference goes through ServerContext::inference, the same path as the REST
// front end; the reply is sent from whatever thread the scheduler completes
// the request on.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "server/inflight_budget.h"
#include "server/tls/tls_config.h"
#include "server/server_context.h"

namespace grpc {
class Server;
class ServerCompletionQueue;
}  // namespace grpc

namespace berth::rpc {

class GrpcConnectionCap;

struct GrpcServerOptions {
  std::string host = "127.0.0.1";
  int port = 8001;  // 0: pick a free port (see port())
  // Largest accepted request message; larger ones are refused with
  // RESOURCE_EXHAUSTED before they are decoded. Replies are not limited.
  uint64_t max_message_bytes = 64ull << 20;
  // Threads polling completion queues and running the handlers (and the
  // inference, with the direct scheduler). 0: one per core this process may
  // run on (its CPU affinity). More threads than cores cost CPU: gRPC hands
  // the poller role from thread to thread on every event.
  int threads = 0;
  // The bytes held by requests in flight, shared with the REST front end
  // (not owned; null: no budget). An infer request that does not fit is
  // refused UNAVAILABLE.
  InflightBudget* inflight_budget = nullptr;
  // TLS (or mutual TLS) when tls.enabled(); ReloadTls() re-reads the key
  // and certificate, the client CA file is re-read when it changes.
  TlsConfig tls;
  // A new connection that has not finished its TLS handshake and HTTP/2
  // preface and settings this long after the accept is closed (slowloris).
  std::chrono::milliseconds handshake_timeout{10000};
  // A connection with no call for this long (or none yet) is sent GOAWAY and
  // closed; a client reconnects for its next call.
  std::chrono::milliseconds idle_timeout{65000};
  // >0: connections beyond it are closed at once (grpc_connection_cap.h).
  int64_t max_connections = 0;
};

class GrpcServer {
 public:
  // `context` is not owned and must outlive the server.
  GrpcServer(GrpcServerOptions options, const ServerContext* context);
  ~GrpcServer();  // Stops with no grace if still running.
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Binds and starts serving. Unavailable if the address cannot be bound
  // (port in use: gRPC's SO_REUSEPORT is turned off, so a second server on
  // the same port fails here instead of silently sharing it).
  Status Start();
  // Stops accepting calls and lets in-flight calls finish for up to `grace`.
  // Then it answers each inference still out in the core UNAVAILABLE ("the
  // server is shutting down"; the core's later answer is dropped), gives
  // those answers up to a second to go out, cancels what is left, and
  // returns once every call is gone and the threads have exited. It does not
  // wait for the core, only for a handler running on one of its threads
  // (e.g. an inference the direct scheduler runs inline). Idempotent.
  void Stop(std::chrono::milliseconds grace);

  // The bound port; 0 before Start().
  int port() const { return bound_port_; }

  // Re-reads the TLS key and certificate (SIGHUP). New connections get the
  // new pair within kTlsRefreshSecs if the two load and match; otherwise the
  // current pair stays in use and the error is returned. OK without TLS.
  // Called from one thread at a time.
  Status ReloadTls();

 private:
  class Service;

  const GrpcServerOptions options_;
  std::unique_ptr<Service> service_;
  // The pair gRPC's certificate provider reads (null without TLS); it
  // outlives server_, whose provider thread reads it until the end.
  std::unique_ptr<GrpcIdentityFile> tls_identity_;
  std::unique_ptr<grpc::Server> server_;
  // One queue per thread; the server must shut down before the queues.
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
  std::unique_ptr<GrpcConnectionCap> connection_cap_;
  int bound_port_ = 0;
};

}  // namespace berth::rpc
