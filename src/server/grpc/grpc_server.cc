#include "server/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <climits>
#include <utility>
#include <vector>

#include "registry/model_repository.h"
#include "server/grpc/grpc_codec.h"
#include "server/grpc/grpc_service.grpc.pb.h"
#include "server/grpc/grpc_status.h"

namespace berth::rpc {
namespace {

const std::vector<std::string> kExtensions = {"model_repository"};

// host:port as a gRPC target; an IPv6 literal needs brackets.
std::string ListenAddress(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::vector<int64_t> ReadyVersions(const ModelEntry& entry) {
  std::vector<int64_t> out;
  for (const auto& v : entry.versions) {
    if (v.state == ModelState::kReady) out.push_back(v.version);
  }
  return out;
}

// Triton's load parameters replace the config or the model files; Berth loads
// only from the repository directory.
template <typename Map>
Status CheckNoLoadOverrides(const Map& parameters) {
  if (parameters.empty()) return Status::Ok();
  return Status::Unimplemented("load parameter '" + parameters.begin()->first +
                               "' is not supported: Berth loads models from the repository "
                               "directory as they are");
}

}  // namespace

// Every handler answers through the call's default reactor; only ModelInfer
// may finish after the handler returns.
class GrpcServer::Service final : public inference::GRPCInferenceService::CallbackService {
 public:
  explicit Service(const ServerContext* context) : ctx_(context) {}

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* call,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return Finish(call, Status::Ok());
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* call,
                                        const inference::ServerReadyRequest*,
                                        inference::ServerReadyResponse* response) override {
    response->set_ready(ctx_->IsReady());
    return Finish(call, Status::Ok());
  }

  // A model that is unknown or has no ready version is "not ready", not an
  // error, as in Triton: tritonclient's is_model_ready() then returns False.
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* call,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override {
    response->set_ready(ctx_->models->Get(request->name(), request->version()).ok());
    return Finish(call, Status::Ok());
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* call,
                                           const inference::ServerMetadataRequest*,
                                           inference::ServerMetadataResponse* response) override {
    response->set_name("berth");
    response->set_version(ctx_->version);
    for (const auto& e : kExtensions) response->add_extensions(e);
    return Finish(call, Status::Ok());
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* call,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override {
    auto model = ctx_->models->Get(request->name(), request->version());
    if (!model.ok()) return Finish(call, model.status());
    std::vector<int64_t> versions{(*model)->version};
    if (request->version().empty()) {
      if (auto entry = ctx_->models->Find(request->name())) versions = ReadyVersions(*entry);
    }
    EncodeModelMetadata(**model, versions, response);
    return Finish(call, Status::Ok());
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* call,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override {
    auto decoded = DecodeInferRequest(*request);
    if (!decoded.ok()) return Finish(call, decoded.status());
    grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
    // `response` stays valid until the reactor finishes, on whichever thread
    // the scheduler completes the request.
    ctx_->inference->Infer(std::move(decoded).value(),
                           [reactor, response, raw = WantsRawOutputs(*request)](
                               StatusOr<InferenceResponse> result) {
                             if (!result.ok()) {
                               reactor->Finish(ToGrpcStatus(result.status()));
                               return;
                             }
                             EncodeInferResponse(*result, raw, response);
                             reactor->Finish(grpc::Status::OK);
                           });
    return reactor;
  }

  grpc::ServerUnaryReactor* RepositoryIndex(grpc::CallbackServerContext* call,
                                            const inference::RepositoryIndexRequest* request,
                                            inference::RepositoryIndexResponse* response) override {
    EncodeRepositoryIndex(ctx_->models->List(), request->ready(), response);
    return Finish(call, Status::Ok());
  }

  grpc::ServerUnaryReactor* RepositoryModelLoad(
      grpc::CallbackServerContext* call, const inference::RepositoryModelLoadRequest* request,
      inference::RepositoryModelLoadResponse*) override {
    Status s = CheckNoLoadOverrides(request->parameters());
    if (s.ok()) s = ctx_->repository->LoadModel(request->model_name());
    return Finish(call, s);
  }

  // The only unload parameter Triton defines, unload_dependents, concerns
  // ensembles, which Berth does not have: parameters are ignored.
  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* call, const inference::RepositoryModelUnloadRequest* request,
      inference::RepositoryModelUnloadResponse*) override {
    return Finish(call, ctx_->repository->UnloadModel(request->model_name()));
  }

 private:
  static grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* call, const Status& s) {
    grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }

  const ServerContext* const ctx_;
};

GrpcServer::GrpcServer(GrpcServerOptions options, const ServerContext* context)
    : options_(std::move(options)), service_(std::make_unique<Service>(context)) {}

GrpcServer::~GrpcServer() { Stop(std::chrono::milliseconds(0)); }

Status GrpcServer::Start() {
  const std::string address = ListenAddress(options_.host, options_.port);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &bound_port_);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<uint64_t>(options_.max_message_bytes, INT_MAX)));
  builder.SetMaxSendMessageSize(-1);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || bound_port_ == 0) {
    server_.reset();
    bound_port_ = 0;
    return Status::Unavailable("cannot listen for gRPC on " + address);
  }
  return Status::Ok();
}

void GrpcServer::Stop(std::chrono::milliseconds grace) {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
}

}  // namespace berth::rpc
