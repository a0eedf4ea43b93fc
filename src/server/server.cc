#include "server/server.h"

#include "backends/onnxruntime/onnxruntime_backend.h"
#include "core/inference_service.h"
#include "core/logging.h"
#include "core/model_manager.h"
#include "core/version.h"
#include "registry/model_repository.h"
#include "server/http/http_server.h"
#include "server/http/router.h"
#include "server/http/v2_routes.h"
#include "server/server_context.h"

namespace berth {

struct Server::State {
  explicit State(ServerOptions o)
      : options(std::move(o)),
        onnxruntime(CreateOnnxRuntimeFactory()),
        repository(options.model_repository, {{"onnx", onnxruntime.get()}}, &models),
        inference(&models) {
    context.inference = &inference;
    context.models = &models;
    context.repository = &repository;
    context.ready = &ready;
    context.strict_readiness = options.strict_readiness;
    context.version = kBerthVersion;
  }

  ServerOptions options;
  std::unique_ptr<BackendFactory> onnxruntime;
  ModelManager models;
  ModelRepository repository;
  InferenceService inference;
  std::atomic<bool> ready{false};
  ServerContext context;
  http::Router router;
  std::unique_ptr<http::HttpServer> http;
};

Server::Server(ServerOptions options) : state_(std::make_unique<State>(std::move(options))) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  State& s = *state_;
  RETURN_IF_ERROR(s.repository.LoadAll());
  if (s.options.http_port >= 0) {
    http::RegisterV2Routes(&s.context, &s.router);
    http::HttpServerOptions o;
    o.host = s.options.host;
    o.port = static_cast<uint16_t>(s.options.http_port);
    o.threads = s.options.http_threads;
    o.max_body_bytes = s.options.max_request_bytes;
    s.http = std::make_unique<http::HttpServer>(o, &s.router);
    RETURN_IF_ERROR(s.http->Start());
    LOG_INFO("HTTP front end listening",
             {{"host", s.options.host}, {"port", std::to_string(s.http->port())}});
  }
  s.ready = true;
  return Status::Ok();
}

void Server::Stop() {
  State& s = *state_;
  s.ready = false;
  if (s.http) {
    s.http->Stop(s.options.shutdown_grace);
    s.http.reset();
  }
}

int Server::http_port() const { return state_->http ? state_->http->port() : -1; }

}  // namespace berth
