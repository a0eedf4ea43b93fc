#include "server/server.h"

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "backends/onnxruntime/onnxruntime_backend.h"
#include "backends/python/python_backend.h"
#include "core/admin_executor.h"
#include "core/inference_service.h"
#include "core/logging.h"
#include "core/model_manager.h"
#include "core/model_name.h"
#include "core/thread_annotations.h"
#include "core/version.h"
#include "monitoring/alerts/alert_manager.h"
#include "monitoring/alerts/builtin_metrics.h"
#include "monitoring/alerts/webhook.h"
#include "monitoring/drift/drift_monitor.h"
#include "monitoring/feedback/feedback_monitor.h"
#include "monitoring/logs/logs.h"
#include "monitoring/metrics.h"
#include "monitoring/observers.h"
#include "registry/config_parser.h"
#include "registry/model_repository.h"
#include "registry/signed_models.h"
#include "registry/single_model_layout.h"
#include "registry/store_sync.h"
#include "server/auth/authorizer.h"
#include "server/grpc/grpc_server.h"
#include "server/http/alerts_routes.h"
#include "server/http/cloud_routes.h"
#include "server/http/connection_cap.h"
#include "server/http/drift_routes.h"
#include "server/http/feedback_routes.h"
#include "server/http/http_server.h"
#include "server/http/keys_routes.h"
#include "server/http/metrics_routes.h"
#include "server/http/openapi_route.h"
#include "server/http/registry_routes.h"
#include "server/http/router.h"
#include "server/http/rows_routes.h"
#include "server/http/shared_memory_routes.h"
#include "server/http/tfserving_routes.h"
#include "server/http/v2_routes.h"
#include "server/inflight_budget.h"
#include "server/server_context.h"

namespace berth {

namespace {

// How many changes (loads, pushes, promotions, ...) may wait for the loader
// behind the one running; one more is answered 503. Each is an
// administrator's request that holds a connection (and a push its upload)
// while it waits: a burst from a deploy script fits, a runaway loop does
// not pile up.
constexpr size_t kMaxQueuedChanges = 64;

// The REST and gRPC connection caps: --max-connections and
// --grpc-max-connections, each 0 (the default) for its share of the
// descriptors under the open-file limit, which is first raised to the hard
// limit (server/http/connection_cap.h).
// A front end that is off leaves its share to the other.
http::ConnectionCaps ConnectionCaps(bool rest, int64_t rest_requested, bool grpc,
                                    int64_t grpc_requested) {
  const http::OpenFileLimit files = http::RaiseOpenFileLimit();
  if (files.now != files.before) {
    LOG_INFO("raised the open-file limit", {{"from", std::to_string(files.before)},
                                            {"to", std::to_string(files.now)}});
  }
  http::ConnectionCaps caps = http::SplitConnectionCaps(files.now, rest_requested, grpc_requested);
  const int64_t automatic = http::AutomaticConnectionCap(files.now);
  if (!rest) caps = {0, grpc_requested > 0 ? grpc_requested : automatic};
  if (!grpc) caps = {rest_requested > 0 ? rest_requested : automatic, 0};
  if (automatic > 0) {
    LOG_INFO("connections capped below the open-file limit",
             {{"max_connections", std::to_string(caps.rest)},
              {"grpc_max_connections", std::to_string(caps.grpc)},
              {"open_file_limit", std::to_string(files.now)}});
  }
  if (automatic > 0 && caps.rest + caps.grpc > automatic) {
    LOG_WARN("--max-connections and --grpc-max-connections leave too few file descriptors for "
             "the rest of the server; past the limit, accept() fails and new connections wait",
             {{"max_connections", std::to_string(caps.rest)},
              {"grpc_max_connections", std::to_string(caps.grpc)},
              {"open_file_limit", std::to_string(files.now)},
              {"suggested_total", std::to_string(automatic)}});
  }
  return caps;
}

// A thread that calls `fn` every `period` until Stop().
class PeriodicThread {
 public:
  ~PeriodicThread() { Stop(); }
  void Start(std::chrono::milliseconds period, std::function<void()> fn) {
    thread_ = std::thread([this, period, fn = std::move(fn)] {
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
        lock.unlock();
        fn();
        lock.lock();
      }
    });
  }
  // Waits for a call in progress to finish.
  void Stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ GUARDED_BY(mu_) = false;
};

}  // namespace

uint64_t InflightCapacity(const ServerOptions& o) {
  if (o.max_inflight_bytes > 0) return o.max_inflight_bytes;
  const uint64_t twice =
      o.max_request_bytes > UINT64_MAX / 2 ? UINT64_MAX : 2 * o.max_request_bytes;
  return std::max<uint64_t>(1ull << 30, twice);
}

struct Server::State {
  explicit State(ServerOptions o)
      : options(std::move(o)),
        onnxruntime(CreateOnnxRuntimeFactory()),
        python(CreatePythonFactory({options.python_interpreter, &python_workers})),
        store_status(PrepareRepository()),
        memory_budget(options.memory_budget_bytes, options.memory_factor),
        drift([this](const std::string& model, int64_t version) {
          return LookupBaseline(model, version);
        }),
        feedback(store.get(), &models),
        logs(options.logs),
        observers(&metrics, &drift, &feedback, &logs),
        repository(options.model_repository, {{"onnx", onnxruntime.get()}, {"python", python.get()}}, &models, store.get()),
        inference(&models, &observers, &shared_memory, options.request_timeout,
                  /*follow_payloads=*/options.logs.payload_log != "off"),
        authorizer({options.require_auth, options.allow_remote_admin}, store.get()),
        inflight(InflightCapacity(options)),
        router(&authorizer) {
    models.SetObserver(&metrics);
    repository.SetMemoryBudget(&memory_budget);
    repository.SetSignedModelVerifier(signed_models.get());
    context.inference = &inference;
    context.models = &models;
    context.statistics = &metrics;
    context.metrics = &metrics;
    context.repository = &repository;
    context.memory_budget = &memory_budget;
    context.shared_memory = &shared_memory;
    context.drift = &drift;
    context.feedback = &feedback;
    context.python_workers = &python_workers;
    context.logs = &logs;
    context.refusals = &logs;
    context.ready = &ready;
    context.strict_readiness = options.strict_readiness;
    context.authorizer = &authorizer;
    context.loader = &loader;
    context.serving_model_required = options.platform.platform != Platform::kNone;
    context.required_model = options.platform.default_model;
    context.version = kBerthVersion;
  }

  // A missing repository directory is created (a server on a new, empty
  // repository serves no models and is ready), then the store is opened.
  Status PrepareRepository() {
    if (options.require_signed_models) {
      ASSIGN_OR_RETURN(signed_models, SignedModelVerifier::FromPemFiles(options.trusted_signers));
    } else if (!options.trusted_signers.empty()) {
      return Status::InvalidArgument("--trusted-signers is used only with --require-signed-models");
    }
    if (!options.model_name.empty()) {
      ASSIGN_OR_RETURN(single_model,
                       SingleModelLayout::Create(options.model_repository, options.model_name));
      options.model_repository = single_model->repository().string();
    }
    std::error_code ec;
    std::filesystem::create_directories(options.model_repository, ec);
    // The default store may be absent and impossible to create (a read-only
    // repository: KServe's /mnt/models, an image's read-only mount): then
    // there are no aliases or statuses to lose, and the server serves the
    // directories alone. A registry.db that exists but will not open (a newer
    // Berth's schema, a corrupt file) holds aliases and statuses: serving
    // without it would serve other versions than the ones promoted.
    const std::filesystem::path default_db =
        std::filesystem::path(options.model_repository) / ".berth" / "registry.db";
    const bool default_db_existed =
        options.registry.empty() && std::filesystem::exists(default_db, ec);
    auto opened = OpenRegistryStore(options.registry, options.model_repository);
    if (opened.ok()) {
      store = std::move(opened).value();
      return Status::Ok();
    }
    if (!options.registry.empty()) return opened.status();
    if (default_db_existed) {
      return Status(opened.status().code(),
                    opened.status().message() + " (" + default_db.string() +
                        "; it holds this repository's aliases and statuses, so berth will "
                        "not serve without it; --registry none serves the directories alone)");
    }
    LOG_WARN("running without a registry store: no aliases or history",
             {{"error", opened.status().message()}});
    return Status::Ok();
  }

  // A version's drift baseline: the one `berth models baseline` stored,
  // else its metadata's `baseline` (docs/monitoring.md).
  StatusOr<std::optional<drift::SourcedBaseline>> LookupBaseline(const std::string& model,
                                                                 int64_t version) {
    if (store == nullptr) return std::optional<drift::SourcedBaseline>();
    ASSIGN_OR_RETURN(std::optional<std::string> stored, store->Baseline(model, version));
    if (stored) {
      ASSIGN_OR_RETURN(drift::BaselineProfile profile, drift::ParseBaseline(*stored));
      return std::optional<drift::SourcedBaseline>({std::move(profile), "store"});
    }
    ASSIGN_OR_RETURN(std::vector<VersionRecord> versions, store->Versions(model));
    for (const VersionRecord& v : versions) {
      if (v.version != version) continue;
      auto profile = drift::BaselineFromMetadata(v.metadata_json);
      if (profile.status().code() == Status::Code::kNotFound) break;
      if (!profile.ok()) return profile.status();
      return std::optional<drift::SourcedBaseline>({std::move(profile).value(), "metadata"});
    }
    return std::optional<drift::SourcedBaseline>();
  }

  // Reads --alerts and builds the alert manager (before the models load, so
  // that a bad file fails at once); its thread starts with the server.
  Status StartAlerts() {
    AlertsFile file;
    if (!options.alerts_file.empty()) {
      ASSIGN_OR_RETURN(file, LoadAlertsFile(options.alerts_file));
    }
    if (!file.webhook.url.empty()) {
      ASSIGN_OR_RETURN(webhook, alerts::WebhookNotifier::Create(file.webhook));
    }
    alert_manager =
        std::make_unique<alerts::AlertManager>(std::move(file.rules), &models, webhook.get());
    alerts::AddBuiltinMetrics(&metrics, &drift, alert_manager.get());
    // Live accuracy's drops against the registered metrics (read from the
    // store: fine on the alert thread, never on a request's).
    for (const auto& [name, metric] : {std::pair{"accuracy_drop", "accuracy"},
                                       std::pair{"f1_drop", "f1"}, std::pair{"mae_rise", "mae"},
                                       std::pair{"rmse_rise", "rmse"}}) {
      alert_manager->SetMetric(name, [this, metric](const alerts::MetricQuery& q) {
        return feedback.AccuracyDrop(q.version.name, q.version.version, metric);
      });
    }
    RETURN_IF_ERROR(alert_manager->CheckMetrics());
    context.alerts = alert_manager.get();
    return Status::Ok();
  }

  ServerOptions options;
  std::unique_ptr<BackendFactory> onnxruntime;
  // Before the factory and the models whose workers count into it.
  PythonWorkerStats python_workers;
  std::unique_ptr<BackendFactory> python;
  // --model-name's repository of links; set by PrepareRepository, so
  // declared before store_status, whose initialiser calls it.
  std::unique_ptr<SingleModelLayout> single_model;
  std::unique_ptr<SignedModelVerifier> signed_models;  // null unless --require-signed-models
  std::unique_ptr<RegistryStore> store;
  Status store_status;
  // Before models: the versions it accounts for return their reservations
  // when they are destroyed.
  MemoryBudget memory_budget;
  // Before models: it observes the table, and a scheduler still running a
  // request when the server is destroyed reports it to the metrics as its
  // models are destroyed, so it must outlive them.
  Metrics metrics;
  // Likewise: a request finishing as its model goes still hands it a sample.
  drift::DriftMonitor drift;
  // Likewise: a request finishing as its model goes still hands it its
  // prediction. It reads the table (models) only in calls that come after
  // the table is built.
  feedback::FeedbackMonitor feedback;
  // Likewise: the access and payload logs.
  logs::Logs logs;
  Observers observers;
  ModelManager models;
  ModelRepository repository;
  // Before inference: requests hold windows of its mappings, which outlive
  // the table (core/shared_memory.h).
  SharedMemoryRegistry shared_memory;
  InferenceService inference;
  std::atomic<bool> ready{false};
  // Before context and router, which point at it.
  auth::Authorizer authorizer;
  ServerContext context;
  // After what its actions change (repository, models) and before the front
  // ends that hand it actions: destroyed (its running action finished) before
  // the former and after the latter.
  AdminExecutor loader{kMaxQueuedChanges};
  InflightBudget inflight;  // shared by the front ends
  http::ConnectionCounters connection_counters;  // REST's limits; read by /metrics
  http::Router router;
  std::unique_ptr<TlsContext> tls;  // REST's TLS context; null without TLS
  std::unique_ptr<http::HttpServer> http;
  std::unique_ptr<rpc::GrpcServer> grpc;
  // The repository poller (ServerOptions::repository_poll_secs).
  PeriodicThread poller;
  // With a store that holds artifacts (PostgreSQL): what other replicas
  // push and move reaches this one (registry/store_sync.h).
  std::unique_ptr<StoreSync> store_sync;
  PeriodicThread store_syncer;
  // Re-reads the API keys (auth::Authorizer::Reload) with --require-auth.
  PeriodicThread key_reloader;
  // The alerts (monitoring/alerts/): the webhook (null without one) before
  // the manager that notifies it, and both before the thread that
  // evaluates, which stops first.
  std::unique_ptr<alerts::WebhookNotifier> webhook;
  std::unique_ptr<alerts::AlertManager> alert_manager;
  PeriodicThread alert_evaluator;
};

Server::Server(ServerOptions options) : state_(std::make_unique<State>(std::move(options))) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  State& s = *state_;
  RETURN_IF_ERROR(s.store_status);
  // Before the models load: a log that cannot be opened fails at once.
  RETURN_IF_ERROR(s.logs.Start());
  RETURN_IF_ERROR(s.StartAlerts());
  RETURN_IF_ERROR(s.repository.LoadAll());
  s.drift.Start();
  s.feedback.Start();
  if (s.store != nullptr && s.store->HoldsArtifacts()) {
    // After LoadAll, which registered this replica's own versions: the
    // first pass fetches what the other replicas have, before the server is
    // ready.
    s.store_sync = std::make_unique<StoreSync>(s.store.get(), &s.repository, &s.models);
    StatusOr<int> synced = s.store_sync->SyncOnce();
    if (!synced.ok()) return synced.status().WithContext("syncing from the registry store");
    s.context.store_sync = s.store_sync.get();
  }
  const std::string& default_model = s.options.platform.default_model;
  if (!default_model.empty() && !s.models.Find(default_model)) {
    return Status::InvalidArgument("--default-model '" + default_model +
                                   "' is not a model of the repository");
  }
  if (s.options.require_auth) {
    if (s.store == nullptr) {
      return Status::FailedPrecondition(
          "--require-auth needs a registry store to hold the API keys (not --registry none)");
    }
    RETURN_IF_ERROR(s.authorizer.Reload().WithContext("reading the API keys"));
    // Keys created by `berth keys create` on the store itself, or through
    // another replica, are seen within this period; revocations too.
    s.key_reloader.Start(std::chrono::seconds(1), [&s, failing = false]() mutable {
      Status reloaded = s.authorizer.Reload();
      if (!reloaded.ok() && !failing) {
        LOG_WARN("cannot re-read the API keys; the ones read before stay in use",
                 {{"error", reloaded.message()}});
      }
      failing = !reloaded.ok();
    });
  }
  // gRPC binds first, so that once the REST port answers (what probes and
  // tests wait for) every listener is bound or the process has failed.
  const http::ConnectionCaps caps =
      ConnectionCaps(s.options.http_port >= 0, s.options.max_connections,
                     s.options.grpc_port >= 0, s.options.grpc_max_connections);
  if (s.options.grpc_port >= 0) {
    rpc::GrpcServerOptions o;
    o.host = s.options.host;
    o.port = s.options.grpc_port;
    o.threads = s.options.grpc_threads;
    o.max_message_bytes = s.options.max_request_bytes;
    o.inflight_budget = &s.inflight;
    o.tls = s.options.tls;
    o.handshake_timeout = std::chrono::seconds(s.options.header_timeout_secs);
    o.idle_timeout = std::chrono::seconds(s.options.idle_timeout_secs);
    o.max_connections = caps.grpc;
    s.grpc = std::make_unique<rpc::GrpcServer>(o, &s.context);
    RETURN_IF_ERROR(s.grpc->Start());
    LOG_INFO("gRPC front end listening",
             {{"host", s.options.host}, {"port", std::to_string(s.grpc->port())}});
  }
  if (s.options.http_port >= 0) {
    // The platform's routes first: its contract wins over any route it shadows.
    http::RegisterCloudRoutes(&s.context, s.options.platform, &s.router);
    http::RegisterV2Routes(&s.context, &s.router);
    http::RegisterRowsRoutes(&s.context, &s.router);
    http::RegisterRegistryRoutes(&s.context, &s.router);
    http::RegisterKeysRoutes(&s.context, &s.router);
    http::RegisterTfServingRoutes(&s.context, &s.router);
    http::RegisterOpenApiRoute(&s.router);
    http::RegisterMetricsRoutes(&s.metrics, &s.context, &s.router, &s.connection_counters);
    http::RegisterSharedMemoryRoutes(&s.context, &s.router);
    http::RegisterDriftRoutes(&s.drift, &s.context, &s.router);
    http::RegisterFeedbackRoutes(&s.feedback, &s.context, &s.router);
    http::RegisterAlertsRoutes(s.alert_manager.get(), &s.router);
    http::HttpServerOptions o;
    o.host = s.options.host;
    o.port = static_cast<uint16_t>(s.options.http_port);
    o.threads = s.options.http_threads;
    o.max_body_bytes = s.options.max_request_bytes;
    o.idle_timeout = std::chrono::seconds(s.options.idle_timeout_secs);
    o.max_connections = caps.rest;
    o.header_timeout = std::chrono::seconds(s.options.header_timeout_secs);
    o.min_body_rate = s.options.min_body_rate;
    o.max_header_bytes = s.options.max_header_bytes;
    o.counters = &s.connection_counters;
    o.refusals = &s.logs;
    o.inflight_budget = &s.inflight;
    if (s.store != nullptr && s.options.max_upload_bytes > 0) {
      // Push bodies stream to files beside the repository's registry data
      // (same filesystem: the artifact is then copied, never held in memory).
      // Leftovers of a crash are removed first.
      const std::filesystem::path uploads =
          std::filesystem::path(s.options.model_repository) / ".berth" / "uploads";
      std::error_code ec;
      std::filesystem::remove_all(uploads, ec);
      std::filesystem::create_directories(uploads, ec);
      if (!ec) {
        o.streams_to_file = http::IsPushTarget;
        o.upload_dir = uploads;
        o.max_upload_bytes = s.options.max_upload_bytes;
      } else {
        LOG_WARN("pushes are read into memory: cannot create the upload directory",
                 {{"error", ec.message()}});
      }
    }
    if (s.options.tls.enabled()) {
      ASSIGN_OR_RETURN(s.tls, TlsContext::Create(s.options.tls));
      o.tls = s.tls.get();
    }
    s.http = std::make_unique<http::HttpServer>(o, &s.router);
    RETURN_IF_ERROR(s.http->Start());
    LOG_INFO("HTTP front end listening",
             {{"host", s.options.host},
              {"port", std::to_string(s.http->port())},
              {"tls", !s.options.tls.enabled() ? "off" : s.options.tls.mutual() ? "mutual" : "on"}});
  }
  if (s.options.repository_poll_secs > 0) {
    s.poller.Start(std::chrono::seconds(s.options.repository_poll_secs),
                   [&s] { s.repository.Poll(); });
  }
  if (s.store_sync) {
    s.store_syncer.Start(s.options.registry_sync_period, [&s, failing = false]() mutable {
      StatusOr<int> synced = s.store_sync->SyncOnce();
      // Said once when the store becomes unreachable and once when it is
      // back, not every period in between.
      if (!synced.ok() && !failing) {
        LOG_WARN("cannot read the registry store; still serving what this replica has",
                 {{"error", synced.status().message()}});
      } else if (synced.ok() && failing) {
        LOG_INFO("the registry store is reachable again");
      }
      failing = !synced.ok();
    });
  }
  // Never on a request's thread: the evaluation reads counters and drift
  // windows, and the webhook sends from a thread of its own.
  s.alert_evaluator.Start(s.options.alert_interval,
                          [&s] { s.alert_manager->Evaluate(alerts::Instant::Now()); });
  s.ready = true;
  return Status::Ok();
}

void Server::Reload() {
  State& s = *state_;
  if (!s.options.tls.enabled()) {
    LOG_INFO("SIGHUP: nothing to reload (TLS is off)");
    return;
  }
  // Each front end keeps its current pair unless the files load and match.
  Status reloaded = s.tls != nullptr ? s.tls->Reload() : Status::Ok();
  if (reloaded.ok() && s.grpc != nullptr) reloaded = s.grpc->ReloadTls();
  if (!reloaded.ok()) {
    LOG_ERROR("TLS reload failed; the current certificate stays in use",
              {{"error", reloaded.message()}});
    return;
  }
  LOG_INFO("TLS certificate reloaded", {{"cert", s.options.tls.cert_file}});
}

void Server::Stop() {
  State& s = *state_;
  s.ready = false;
  s.poller.Stop();
  s.store_syncer.Stop();
  s.key_reloader.Stop();
  s.alert_evaluator.Stop();
  // The changes waiting for the loader are answered 503 now, while the
  // front ends are up to send it; the one running goes on within the grace
  // period below, and is waited for (Join) once the front ends are down.
  s.loader.Close();
  // Requests waiting in a dynamic batcher run now, not after their queue
  // delay, and new ones are refused UNAVAILABLE: the grace period is for
  // finishing work, not for waiting for more.
  s.models.ForEachReadyModel([](const Model& m) { m.scheduler->Drain(); });
  // Both front ends drain in-flight requests within the same grace period,
  // then answer what is still out in the core themselves (503/UNAVAILABLE);
  // a scheduler's later answer is dropped.
  std::thread grpc_stop;
  if (s.grpc) grpc_stop = std::thread([&s] { s.grpc->Stop(s.options.shutdown_grace); });
  if (s.http) {
    s.http->Stop(s.options.shutdown_grace);
    s.http.reset();
  }
  if (grpc_stop.joinable()) grpc_stop.join();
  s.grpc.reset();
  // The change still running finishes (its answer, if late, is dropped):
  // a load is never cut off halfway.
  s.loader.Join();
  // No door registers any more; a request still out in the core keeps its
  // windows mapped until it finishes. Said in the log, so that a client's
  // owner can tell the server let go of its objects.
  if (const size_t regions = s.shared_memory.UnregisterAll(); regions > 0) {
    LOG_INFO("system shared memory regions unregistered at shutdown",
             {{"regions", std::to_string(regions)}});
  }
  s.drift.Stop();
  // After the front ends: the predictions of every answered request are
  // written.
  s.feedback.Stop();
  s.logs.Stop();
}

int Server::http_port() const { return state_->http ? state_->http->port() : -1; }

int Server::grpc_port() const { return state_->grpc ? state_->grpc->port() : -1; }

}  // namespace berth
