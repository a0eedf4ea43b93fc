// Server: the one object that owns everything a running Berth process has:
// the backends, the model table, the repository, the inference path and the
// protocol front ends. main() builds it from flags, starts it, stops it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "monitoring/logs/logs_options.h"
#include "server/platform.h"
#include "server/tls/tls_config.h"

namespace berth {

struct ServerOptions {
  std::string model_repository;
  // --model-name: serve model_repository as one model of this name, in any
  // layout KServe's storage initializer leaves (registry/single_model_layout.h).
  std::string model_name;
  // The registry store (versions, aliases, audit): "" for the default,
  // SQLite at <model_repository>/.berth/registry.db (if that cannot be
  // opened, e.g. on a read-only repository, the server runs without one and
  // says so); "sqlite:PATH"; "postgresql://USER@HOST:PORT/DB" (replicas
  // sharing one store, artifacts included; unreachable is fatal); or "none".
  std::string registry;
  // With a PostgreSQL store: how often to look for other replicas' changes.
  std::chrono::milliseconds registry_sync_period{1000};
  std::string host = "127.0.0.1";
  int http_port = 8000;          // -1 disables the HTTP front end; 0 picks a free port
  int grpc_port = 8001;          // -1 disables gRPC; 0 picks a free port
  int http_threads = 2;
  int grpc_threads = 0;          // 0: one completion-queue thread per core the process may run on
  uint64_t max_request_bytes = 64ull << 20;
  // A push's body (POST /v2/registry/models/{m}/versions) streams to a file
  // and may be this large (--max-upload-bytes); 0: pushes are read into
  // memory under max_request_bytes like any request.
  uint64_t max_upload_bytes = 4ull << 30;
  // Bytes that request bodies in flight may hold at once, wire and decoded
  // forms together (InflightBudget); beyond it, 503. 0: the larger of 1 GiB
  // and twice max_request_bytes (one compressed request of the largest size).
  uint64_t max_inflight_bytes = 0;
  int64_t max_connections = 0;  // >0: REST connections beyond it are answered 503
  // >0: gRPC connections beyond it are closed at once (--grpc-max-connections).
  // 0 (and max_connections 0): the descriptors under the open-file limit,
  // less headroom, are split a quarter to gRPC, the rest to REST
  // (http/connection_cap.h).
  int64_t grpc_max_connections = 0;
  // A REST connection idle this long is closed; so is a gRPC connection with
  // no call for this long (GOAWAY first: a client reconnects cleanly).
  int idle_timeout_secs = 65;
  // A REST request's header (and a new connection's TLS handshake) must
  // arrive whole within this long of its first byte (of the accept, for a
  // new connection); slower clients are closed (slowloris). A new gRPC
  // connection must finish its TLS handshake and HTTP/2 preface and
  // settings within this long of the accept.
  int header_timeout_secs = 10;
  // A REST body must arrive at this many bytes per second on average, after
  // a grace of header_timeout_secs; slower clients are closed. 0: bodies are
  // bounded only by idle_timeout_secs.
  uint64_t min_body_rate = 1024;
  // Largest REST request header (request line and fields); larger: 431.
  uint32_t max_header_bytes = 16 * 1024;
  // How long an inference request may take from the moment the core
  // receives it, unless it asks for less (gRPC deadline, `timeout`
  // parameter); a request still queued then is answered 504 /
  // DEADLINE_EXCEEDED. 0: no limit.
  std::chrono::milliseconds request_timeout{0};
  // --python: the interpreter that runs `backend: python` models' workers
  // (python -m berth.runtime.worker), unless a model's config names another.
  std::string python_interpreter = "python3";
  bool strict_readiness = true;
  // Without require_auth: accept admin requests (changes to what is served,
  // API keys) from clients other than loopback ones (--allow-remote-admin);
  // see auth::Authorizer.
  bool allow_remote_admin = false;
  // Every route but liveness and readiness needs an API key granting its
  // scope (--require-auth; server/auth/authorizer.h).
  bool require_auth = false;
  std::chrono::milliseconds shutdown_grace{10000};
  // >0: rescan the repository this often and load, reload or unload models
  // whose directories changed (new versions go live without a restart).
  int repository_poll_secs = 0;
  // Memory the loaded model versions may hold (--memory-budget); 0: no
  // limit. See core/memory_budget.h.
  uint64_t memory_budget_bytes = 0;
  // A version not measured yet needs its artifact's bytes times this.
  double memory_factor = 2.0;
  // A cloud container contract served beside the v2 routes (--platform,
  // --default-model); see server/platform.h.
  PlatformOptions platform;
  // TLS for REST and gRPC (--tls-cert, --tls-key, --tls-client-ca).
  TlsConfig tls;
  // --require-signed-models: a version loads only if it carries a model
  // signature by one of --trusted-signers (registry/signed_models.h).
  bool require_signed_models = false;
  std::vector<std::string> trusted_signers;
  // The access and payload logs (--access-log, --payload-log...; both off
  // by default): monitoring/logs/.
  logs::LogsOptions logs;
  // --alerts: the server's alert rules and webhook (docs/monitoring.md#alerts);
  // empty: only the models' own `alerts:`.
  std::string alerts_file;
  // --alert-interval-ms: how often the alert rules are evaluated.
  std::chrono::milliseconds alert_interval{15000};
};

// The in-flight byte budget `options` asks for (see max_inflight_bytes).
uint64_t InflightCapacity(const ServerOptions& options);

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads the repository and starts the front ends. A model that fails to
  // load is reported, not fatal; an unreadable repository or a port that
  // cannot be bound is.
  Status Start();
  // Stops accepting, finishes in-flight requests (up to the grace period).
  void Stop();
  // What SIGHUP asks for: re-reads the TLS certificate and key (a failure
  // is logged and the current ones stay).
  void Reload();

  int http_port() const;  // the bound REST port; -1 if disabled or stopped
  int grpc_port() const;  // the bound gRPC port; -1 if disabled or stopped

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace berth
