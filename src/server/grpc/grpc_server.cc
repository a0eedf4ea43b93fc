#include "server/grpc/grpc_server.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <sched.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "core/logging.h"
#include "registry/model_repository.h"
#include "registry/triton_config.h"
#include "server/auth/authorizer.h"
#include "server/grpc/grpc_codec.h"
#include "server/grpc/grpc_connection_cap.h"
#include "server/grpc/grpc_service.grpc.pb.h"
#include "server/grpc/grpc_unary_call.h"
#include "server/pending_replies.h"
#include "server/refusal_log.h"

namespace berth::rpc {
namespace {

// How long the UNAVAILABLE answers sent when the grace period ends have to
// reach their clients before gRPC cancels whatever is still unsent. Stop
// returns as soon as they are sent, so the margin costs nothing when the
// machine keeps up; 1 s was too short on a loaded machine (the client saw
// "Socket closed" instead of the answer).
constexpr std::chrono::seconds kCancelledReplyTime{3};

// host:port as a gRPC target; an IPv6 literal needs brackets.
std::string ListenAddress(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// The cores this process may run on (taskset, cgroup cpusets), at least 1.
int AvailableCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(CPU_COUNT(&set), 1);
  return static_cast<int>(std::max(std::thread::hardware_concurrency(), 1u));
}

// A call's metadata as ModelManager::Resolve reads a split's routing key
// (berth-routing-key, or the split's sticky key): no copy is made.
template <typename CallT>
class MetadataRoutingKeys final : public RoutingKeys {
 public:
  explicit MetadataRoutingKeys(const CallT& call) : call_(call) {}
  std::string_view Find(std::string_view name) const override { return call_.metadata(name); }

 private:
  const CallT& call_;
};

// The IP address in gRPC's peer string ("ipv4:127.0.0.1:5000",
// "ipv6:[::1]:5000"); empty for other transports.
std::string PeerAddress(const std::string& peer) {
  std::string_view p(peer);
  if (p.starts_with("ipv4:")) {
    p.remove_prefix(5);
    return std::string(p.substr(0, p.rfind(':')));
  }
  if (p.starts_with("ipv6:[")) {
    p.remove_prefix(6);
    return std::string(p.substr(0, p.find(']')));
  }
  return std::string();
}

// The model a request names, for a key limited to infer:MODEL: only an
// inference's (the other RPCs need read or admin, which name no model).
template <typename Request>
std::string_view ModelOf(const Request&) {
  return {};
}
std::string_view ModelOf(const inference::ModelInferRequest& request) {
  return request.model_name();
}

}  // namespace

// The service's handlers, one per method of GRPCInferenceService; each
// answers through its call's Reply(). Only ModelInfer (from the scheduler's
// thread) and the repository's load and unload (from the loader's) may reply
// after the handler returns.
class GrpcServer::Service {
 public:
  Service(const ServerContext* context, InflightBudget* budget)
      : ctx_(context),
        default_authorizer_(context->authorizer != nullptr
                                ? nullptr
                                : std::make_unique<auth::Authorizer>(auth::AuthOptions{}, nullptr)),
        authorizer_(context->authorizer != nullptr ? context->authorizer
                                                   : default_authorizer_.get()),
        budget_(budget) {
    using S = Service;
    using auth::Scope;
    Add(&AsyncService::RequestServerLive, &S::ServerLive, Scope::kNone);
    Add(&AsyncService::RequestServerReady, &S::ServerReady, Scope::kNone);
    Add(&AsyncService::RequestModelReady, &S::ModelReady, Scope::kRead);
    Add(&AsyncService::RequestServerMetadata, &S::ServerMetadata, Scope::kRead);
    Add(&AsyncService::RequestModelMetadata, &S::ModelMetadata, Scope::kRead);
    Add(&AsyncService::RequestModelInfer, &S::ModelInfer, Scope::kInfer);
    Add(&AsyncService::RequestModelStatistics, &S::ModelStatistics, Scope::kRead);
    Add(&AsyncService::RequestRepositoryIndex, &S::RepositoryIndex, Scope::kRead);
    Add(&AsyncService::RequestRepositoryModelLoad, &S::RepositoryModelLoad, Scope::kAdmin);
    Add(&AsyncService::RequestRepositoryModelUnload, &S::RepositoryModelUnload, Scope::kAdmin);
    Add(&AsyncService::RequestModelConfig, &S::ModelConfig, Scope::kRead);
    Add(&AsyncService::RequestSystemSharedMemoryStatus, &S::SystemSharedMemoryStatus,
        Scope::kRead);
    Add(&AsyncService::RequestSystemSharedMemoryRegister, &S::SystemSharedMemoryRegister,
        Scope::kAdmin);
    Add(&AsyncService::RequestSystemSharedMemoryUnregister, &S::SystemSharedMemoryUnregister,
        Scope::kAdmin);
    Add(&AsyncService::RequestCudaSharedMemoryStatus, &S::CudaSharedMemory, Scope::kRead);
    Add(&AsyncService::RequestCudaSharedMemoryRegister, &S::CudaSharedMemory, Scope::kAdmin);
    Add(&AsyncService::RequestCudaSharedMemoryUnregister, &S::CudaSharedMemory, Scope::kAdmin);
  }

  grpc::Service* grpc_service() { return &async_; }

  // Puts one waiting call of every method on `cq`.
  void RequestCalls(grpc::ServerCompletionQueue* cq) const {
    for (const auto& method : methods_) method->RequestCall(cq);
  }

  // Blocks until every call is gone. Only after grpc::Server::Shutdown: the
  // calls still waiting come back not ok then, and no new ones arrive.
  void WaitUntilNoCalls() const { live_.WaitUntilNone(); }

  // Waits until no inference is out in the core and no change waits for the
  // loader, or `deadline` passes.
  void WaitForInferences(std::chrono::steady_clock::time_point deadline) const {
    inferences_.WaitUntilEmpty(deadline);
    changes_.WaitUntilEmpty(deadline);
  }

  // Answers every inference still out in the core, and every change still
  // waiting for the loader, with UNAVAILABLE, and each later one at once;
  // the core's and the loader's own answers to them are dropped. Returns how
  // many it answered.
  size_t CancelInferences() const {
    return inferences_.CancelAll([](InferCall* call) { call->Reply(ShuttingDown()); }) +
           changes_.CancelAll([](const ChangeReply& reply) { reply(ShuttingDown()); });
  }

 private:
  using AsyncService = inference::GRPCInferenceService::AsyncService;
  template <typename Request, typename Response>
  using Call = UnaryCall<Request, Response>;
  using InferCall = Call<inference::ModelInferRequest, inference::ModelInferResponse>;

  // `request` is the generated AsyncService::Request<Method>, declared in a
  // base class of AsyncService (hence `Base`).
  // `scope` is what the method needs (auth/scope.h): the call is authorized
  // before `handler` runs, and answered UNAUTHENTICATED, PERMISSION_DENIED
  // or RESOURCE_EXHAUSTED (with retry-after in the trailing metadata)
  // without running it if refused.
  template <typename Base, typename Request, typename Response>
  void Add(void (Base::*request)(grpc::ServerContext*, Request*,
                                 grpc::ServerAsyncResponseWriter<Response>*, grpc::CompletionQueue*,
                                 grpc::ServerCompletionQueue*, void*),
           void (Service::*handler)(Call<Request, Response>&) const, auth::Scope scope) {
    methods_.push_back(std::make_unique<UnaryMethod<Request, Response>>(
        [this, request](grpc::ServerContext* context, Request* message,
                        grpc::ServerAsyncResponseWriter<Response>* responder,
                        grpc::ServerCompletionQueue* cq,
                        void* tag) { (async_.*request)(context, message, responder, cq, cq, tag); },
        [this, handler, scope](Call<Request, Response>& call) {
          // The peer is read only when the decision may need it (gRPC
          // formats it anew for every call).
          const std::string peer = scope == auth::Scope::kAdmin || authorizer_->require_auth()
                                       ? PeerAddress(call.peer())
                                       : std::string();
          const auth::Decision decision = authorizer_->Authorize(
              {call.metadata("authorization"), peer, ModelOf(call.request())}, scope);
          if (!decision.ok()) {
            if (decision.retry_after_secs > 0) {
              call.AddTrailingMetadata("retry-after", std::to_string(decision.retry_after_secs));
            }
            return Refuse(call, decision.status);
          }
          call.set_actor(decision.actor);
          (this->*handler)(call);
        },
        &live_));
  }

  void ServerLive(Call<inference::ServerLiveRequest, inference::ServerLiveResponse>& call) const {
    call.response()->set_live(true);
    call.Reply(Status::Ok());
  }

  void ServerReady(
      Call<inference::ServerReadyRequest, inference::ServerReadyResponse>& call) const {
    call.response()->set_ready(ctx_->IsReady());
    call.Reply(Status::Ok());
  }

  // A model that is unknown or has no ready version is "not ready", not an
  // error, as in Triton: tritonclient's is_model_ready() then returns False.
  void ModelReady(Call<inference::ModelReadyRequest, inference::ModelReadyResponse>& call) const {
    const auto& request = call.request();
    call.response()->set_ready(ctx_->models->Resolve(request.name(), request.version()).ok());
    call.Reply(Status::Ok());
  }

  void ServerMetadata(
      Call<inference::ServerMetadataRequest, inference::ServerMetadataResponse>& call) const {
    auto* response = call.response();
    response->set_name("berth");
    response->set_version(ctx_->version);
    for (const auto& e : ServerExtensions()) response->add_extensions(e);
    call.Reply(Status::Ok());
  }

  void ModelMetadata(
      Call<inference::ModelMetadataRequest, inference::ModelMetadataResponse>& call) const {
    const auto& request = call.request();
    auto metadata = GetModelMetadata(*ctx_->models, request.name(), request.version());
    if (!metadata.ok()) return call.Reply(metadata.status());
    EncodeModelMetadata(*metadata, call.response());
    call.Reply(Status::Ok());
  }

  void ModelConfig(
      Call<inference::ModelConfigRequest, inference::ModelConfigResponse>& call) const {
    auto model = ctx_->models->Resolve(call.request().name(), call.request().version());
    if (!model.ok()) return call.Reply(model.status());
    *call.response()->mutable_config() = ToTritonConfig(
        **model, ctx_->repository != nullptr ? ctx_->repository->store() : nullptr);
    call.Reply(Status::Ok());
  }

  // Answers `status` to a call refused before it reached the core, and
  // writes its access line (server/refusal_log.h).
  template <typename CallT>
  void Refuse(CallT& call, const Status& status) const {
    if (ctx_->refusals != nullptr) {
      const std::string client = PeerAddress(call.peer());
      LogRefusal(ctx_->refusals,
                 {.protocol = Protocol::kGrpc,
                  .model = ModelOf(call.request()),
                  .client = client,
                  .start = call.started()},
                 status);
    }
    call.Reply(status);
  }

  void ModelInfer(InferCall& call) const {
    auto decoded = DecodeInferRequest(call.request());
    if (!decoded.ok()) return Refuse(call, decoded.status());
    (*decoded)->deadline = call.deadline();
    // The call stays alive until it replies: on whichever thread the
    // scheduler completes the request, or, if the grace period of a shutdown
    // ends first, in CancelInferences(). The slot lets only the first reply.
    // gRPC has read the whole message already; the reservation bounds how
    // many such messages the core holds at once, as the REST budget does.
    std::shared_ptr<InflightBudget::Reservation> held;
    if (budget_ != nullptr) {
      auto reservation = budget_->TryReserve(call.request().ByteSizeLong());
      if (!reservation) {
        return Refuse(call, Status::Unavailable(
            "the server is at its limit of " + std::to_string(budget_->capacity()) +
            " bytes held by requests in flight; retry later"));
      }
      held = std::make_shared<InflightBudget::Reservation>(std::move(*reservation));
    }
    auto slot = inferences_.Add(&call);
    if (slot == nullptr) return Refuse(call, ShuttingDown());
    // Read while the request is resolved, before it can complete and reply.
    const MetadataRoutingKeys<InferCall> keys(call);
    ctx_->inference->Infer(
        std::move(decoded).value(),
        [slot = std::move(slot), held = std::move(held)](StatusOr<InferenceResponse> result) {
          slot->Answer([&](InferCall* call) {
            if (!result.ok()) return call->Reply(result.status());
            EncodeInferResponse(*result, call->response());
            call->Reply(Status::Ok());
          });
        },
        &keys);
  }

  void ModelStatistics(
      Call<inference::ModelStatisticsRequest, inference::ModelStatisticsResponse>& call) const {
    if (ctx_->statistics == nullptr) {
      return call.Reply(Status::Unavailable("statistics are not collected"));
    }
    const auto& request = call.request();
    auto stats = GetModelStatistics(*ctx_->models, *ctx_->statistics, request.name(),
                                    request.version());
    if (!stats.ok()) return call.Reply(stats.status());
    EncodeModelStatistics(*stats, call.response());
    call.Reply(Status::Ok());
  }

  void RepositoryIndex(
      Call<inference::RepositoryIndexRequest, inference::RepositoryIndexResponse>& call) const {
    EncodeRepositoryIndex(berth::RepositoryIndex(ctx_->models->List(), call.request().ready()),
                          call.response());
    call.Reply(Status::Ok());
  }

  void RepositoryModelLoad(Call<inference::RepositoryModelLoadRequest,
                                inference::RepositoryModelLoadResponse>& call) const {
    std::vector<LoadParameter> parameters;
    for (const auto& [name, value] : call.request().parameters()) {
      LoadParameter& p = parameters.emplace_back();
      p.name = name;
      if (value.has_string_param()) {
        p.type = LoadParameter::Type::kString;
        p.value = value.string_param();
      } else if (value.has_bytes_param()) {
        p.type = LoadParameter::Type::kBytes;
        p.value = value.bytes_param();
      }
    }
    RunChange(call, [ctx = ctx_, actor = call.actor(), name = call.request().model_name(),
                     parameters = std::move(parameters)]() mutable {
      return ctx->LoadModel(actor, name, std::move(parameters));
    });
  }

  // The only unload parameter Triton defines, unload_dependents, concerns
  // ensembles, which Berth does not have: parameters are ignored.
  void RepositoryModelUnload(Call<inference::RepositoryModelUnloadRequest,
                                  inference::RepositoryModelUnloadResponse>& call) const {
    RunChange(call, [ctx = ctx_, actor = call.actor(), name = call.request().model_name()] {
      return ctx->UnloadModel(actor, name);
    });
  }

  // Runs `change` (a Status() callable that owns copies of what it reads of
  // the call) on the server's loader (ServerContext::RunChange) and replies
  // with its result: a load never holds a completion-queue thread. The call
  // waits in changes_, so that a shutdown whose grace period ends first
  // answers it UNAVAILABLE; the change then still finishes, unanswered.
  template <typename CallT, typename Change>
  void RunChange(CallT& call, Change change) const {
    auto slot = changes_.Add([&call](const Status& status) { call.Reply(status); });
    if (slot == nullptr) return call.Reply(ShuttingDown());
    ctx_->RunChange([slot = std::move(slot), change = std::make_shared<Change>(std::move(change))](
                        const Status& admitted) {
      const Status result = admitted.ok() ? (*change)() : admitted;
      slot->Answer([&](const ChangeReply& reply) { reply(result); });
    });
  }

  void SystemSharedMemoryStatus(Call<inference::SystemSharedMemoryStatusRequest,
                                     inference::SystemSharedMemoryStatusResponse>& call) const {
    if (ctx_->shared_memory == nullptr) return call.Reply(Status::Ok());
    auto regions = ctx_->shared_memory->Describe(call.request().name());
    if (!regions.ok()) return call.Reply(regions.status());
    for (const SharedMemoryRegionInfo& r : *regions) {
      auto& out = (*call.response()->mutable_regions())[r.name];
      out.set_name(r.name);
      out.set_key(r.key);
      out.set_offset(r.offset);
      out.set_byte_size(r.byte_size);
    }
    call.Reply(Status::Ok());
  }

  void SystemSharedMemoryRegister(Call<inference::SystemSharedMemoryRegisterRequest,
                                       inference::SystemSharedMemoryRegisterResponse>& call) const {
    const auto& r = call.request();
    call.Reply(ctx_->RegisterSharedMemory(r.name(), r.key(), r.offset(),
                                          r.byte_size()));
  }

  void SystemSharedMemoryUnregister(
      Call<inference::SystemSharedMemoryUnregisterRequest,
           inference::SystemSharedMemoryUnregisterResponse>& call) const {
    call.Reply(ctx_->UnregisterSharedMemory(call.request().name()));
  }

  // Every CUDA shared-memory method: the REST routes' answer.
  template <typename Request, typename Response>
  void CudaSharedMemory(Call<Request, Response>& call) const {
    const std::string& region = call.request().name();
    call.Reply(Status::InvalidArgument(
        "CUDA shared memory" + (region.empty() ? std::string() : " region '" + region + "'") +
        " is not supported: GPUs not supported (Berth has no GPU build; use system shared "
        "memory)"));
  }

  const ServerContext* const ctx_;
  // Without the server's authorizer (tests): no keys, admin for loopback only.
  const std::unique_ptr<auth::Authorizer> default_authorizer_;
  const auth::Authorizer* const authorizer_;
  InflightBudget* const budget_;
  AsyncService async_;
  LiveCalls live_;
  // The ModelInfer calls whose inference is out in the core.
  mutable PendingReplies<InferCall*> inferences_;
  // The repository load and unload calls waiting for the loader: how each
  // replies.
  using ChangeReply = std::function<void(const Status&)>;
  mutable PendingReplies<ChangeReply> changes_;
  std::vector<std::unique_ptr<UnaryMethodBase>> methods_;
};

namespace {

// A thread's whole life: take events off its queue until the queue is shut
// down and drained.
void Poll(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<CallTag*>(tag)->Proceed(ok);
}

}  // namespace

namespace {

// How often gRPC looks at its certificate files for a change: a SIGHUP
// reload of the REST side is matched within this time.
constexpr unsigned kTlsRefreshSecs = 1;

// Keepalive pings a client may send: at most one per this long while no call
// is open (gRPC's default is 5 minutes; Berth allows a client that checks an
// idle connection every half minute). One sooner is a strike; after
// kMaxPingStrikes the connection is sent GOAWAY (ENHANCE_YOUR_CALM) and
// closed, so a ping flood costs the server nothing lasting.
constexpr int kMinClientPingIntervalMs = 30'000;
constexpr int kMaxPingStrikes = 2;
// See AddConnectionLimits: what makes gRPC 1.51 honour the idle limit.
constexpr std::chrono::milliseconds kMaxConnectionAge = std::chrono::hours(24);

int Milliseconds(std::chrono::milliseconds ms) {
  return static_cast<int>(std::clamp<int64_t>(ms.count(), 1, INT_MAX));
}

// The limits a client cannot hold the server past (slowloris, idle
// connections, ping floods); the connection cap is GrpcConnectionCap's.
void AddConnectionLimits(const GrpcServerOptions& options, grpc::ServerBuilder* builder) {
  // The TLS handshake, the HTTP/2 preface and the client's first SETTINGS
  // frame must all arrive within this long of the accept; gRPC's default is
  // 120 s.
  builder->AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                              Milliseconds(options.handshake_timeout));
  // No call for this long (or none yet): GOAWAY, then close. A client's
  // channel reconnects for its next call (tested with tritonclient.grpc).
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, Milliseconds(options.idle_timeout));
  // gRPC 1.51 starts the idle timer only when a maximum connection age is
  // set too (without one, GRPC_TRACE=client_idle_filter shows the timer
  // started and never firing, and idle connections stay open for good). A
  // day is long enough not to matter otherwise: a connection that old is
  // sent GOAWAY and its client reconnects, as on a rolling restart.
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Milliseconds(kMaxConnectionAge));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              kMinClientPingIntervalMs);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, kMaxPingStrikes);
}

// `identity` holds the key and the certificate chain in one file (see
// GrpcIdentityFile): gRPC reads it as both, so it never pairs a new key with
// an old certificate.
std::shared_ptr<grpc::ServerCredentials> Credentials(const TlsConfig& tls,
                                                     const GrpcIdentityFile* identity) {
  if (identity == nullptr) return grpc::InsecureServerCredentials();
  auto provider = tls.mutual() ? std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                                     identity->path(), identity->path(), tls.client_ca_file,
                                     kTlsRefreshSecs)
                               : std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
                                     identity->path(), identity->path(), kTlsRefreshSecs);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (tls.mutual()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

GrpcServer::GrpcServer(GrpcServerOptions options, const ServerContext* context)
    : options_(std::move(options)),
      service_(std::make_unique<Service>(context, options_.inflight_budget)) {}

GrpcServer::~GrpcServer() { Stop(std::chrono::milliseconds(0)); }

Status GrpcServer::ReloadTls() {
  return tls_identity_ == nullptr ? Status::Ok() : tls_identity_->Update(options_.tls);
}

Status GrpcServer::Start() {
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock
  // detection on: a lock-graph update on every lock gRPC takes, about 2% of
  // the CPU of a small call. It is a debugging aid, off in release builds of
  // Abseil; gRPC is Berth's only user of absl::Mutex.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::string address = ListenAddress(options_.host, options_.port);
  grpc::ServerBuilder builder;
  if (options_.tls.enabled()) {
    ASSIGN_OR_RETURN(tls_identity_, GrpcIdentityFile::Create(options_.tls));
  }
  builder.AddListeningPort(address, Credentials(options_.tls, tls_identity_.get()), &bound_port_);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<uint64_t>(options_.max_message_bytes, INT_MAX)));
  builder.SetMaxSendMessageSize(-1);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  AddConnectionLimits(options_, &builder);
  if (options_.max_connections > 0) {
    connection_cap_ = std::make_unique<GrpcConnectionCap>(options_.max_connections);
    connection_cap_->Install(&builder);
  }
  builder.RegisterService(service_->grpc_service());
  const int threads = options_.threads > 0 ? options_.threads : AvailableCores();
  for (int i = 0; i < threads; ++i) queues_.push_back(builder.AddCompletionQueue());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || bound_port_ == 0) {
    server_.reset();
    queues_.clear();
    bound_port_ = 0;
    return Status::Unavailable("cannot listen for gRPC on " + address);
  }
  for (auto& cq : queues_) {
    service_->RequestCalls(cq.get());
    threads_.emplace_back(Poll, cq.get());
  }
  return Status::Ok();
}

void GrpcServer::Stop(std::chrono::milliseconds grace) {
  if (server_ == nullptr) return;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  // gRPC closes the listeners at once and lets the calls in flight finish;
  // at its deadline it cancels the rest, which a client sees as CANCELLED or
  // a closed connection. Its deadline is set later than the grace period, so
  // that an inference still out in the core when the grace ends is answered
  // UNAVAILABLE first. The threads keep serving meanwhile.
  std::thread shutdown([this, grace] {
    server_->Shutdown(std::chrono::system_clock::now() + grace + kCancelledReplyTime);
  });
  service_->WaitForInferences(deadline);
  if (const size_t cancelled = service_->CancelInferences(); cancelled > 0) {
    LOG_WARN("gRPC: shutdown grace period over with inferences in flight; answered UNAVAILABLE",
             {{"cancelled", std::to_string(cancelled)}});
  }
  shutdown.join();
  // Every call has replied or been cancelled by gRPC; none waits for the
  // core any more. A reply still goes through a queue, so the queues stay up
  // until every call is gone.
  service_->WaitUntilNoCalls();
  for (auto& cq : queues_) cq->Shutdown();
  for (auto& t : threads_) t.join();
  threads_.clear();
  server_.reset();
  queues_.clear();
}

}  // namespace berth::rpc
