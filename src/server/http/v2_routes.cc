#include "server/http/v2_routes.h"

#include <rapidjson/document.h>

#include "registry/model_repository.h"
#include "server/http/v2_json_codec.h"

namespace berth::http {
namespace {

const std::vector<std::string> kExtensions = {"model_repository", "binary_tensor_data"};

std::string_view Param(const PathParams& params, std::string_view key) {
  auto it = params.find(key);
  return it == params.end() ? std::string_view() : std::string_view(it->second);
}

// Triton's optional body {"ready": true} limits the index to READY versions.
StatusOr<bool> ParseIndexRequest(const std::string& body) {
  if (body.empty()) return false;
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::InvalidArgument("the repository index request must be a JSON object");
  }
  auto it = doc.FindMember("ready");
  if (it == doc.MemberEnd()) return false;
  if (!it->value.IsBool()) return Status::InvalidArgument("'ready' must be a boolean");
  return it->value.GetBool();
}

std::vector<int64_t> ReadyVersions(const ModelEntry& entry) {
  std::vector<int64_t> out;
  for (const auto& v : entry.versions) {
    if (v.state == ModelState::kReady) out.push_back(v.version);
  }
  return out;
}

}  // namespace

void RegisterV2Routes(const ServerContext* ctx, Router* router) {
  router->Add("GET", "/v2/health/live", [](HttpRequest&, const PathParams&, Reply reply) {
    reply(JsonResponse(200, "{\"live\":true}"));
  });
  router->Add("GET", "/v2/health/ready", [ctx](HttpRequest&, const PathParams&, Reply reply) {
    if (ctx->IsReady()) return reply(JsonResponse(200, "{\"ready\":true}"));
    reply(ErrorResponse(Status::Unavailable("the server is not ready")));
  });
  router->Add("GET", "/v2", [ctx](HttpRequest&, const PathParams&, Reply reply) {
    reply(JsonResponse(200, WriteV2ServerMetadata("berth", ctx->version, kExtensions)));
  });

  auto metadata = [ctx](HttpRequest&, const PathParams& p, Reply reply) {
    auto model = ctx->models->Get(Param(p, "model"), Param(p, "version"));
    if (!model.ok()) return reply(ErrorResponse(model.status()));
    std::vector<int64_t> versions{(*model)->version};
    if (Param(p, "version").empty()) {
      if (auto entry = ctx->models->Find(Param(p, "model"))) versions = ReadyVersions(*entry);
    }
    reply(JsonResponse(200, WriteV2ModelMetadata(**model, versions)));
  };
  router->Add("GET", "/v2/models/{model}", metadata);
  router->Add("GET", "/v2/models/{model}/versions/{version}", metadata);

  auto ready = [ctx](HttpRequest&, const PathParams& p, Reply reply) {
    const std::string name(Param(p, "model"));
    auto model = ctx->models->Get(name, Param(p, "version"));
    if (!model.ok()) return reply(ErrorResponse(model.status()));
    reply(JsonResponse(200, "{\"ready\":true}"));
  };
  router->Add("GET", "/v2/models/{model}/ready", ready);
  router->Add("GET", "/v2/models/{model}/versions/{version}/ready", ready);

  auto infer = [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    auto request = ParseV2InferRequest(req.body);
    if (!request.ok()) return reply(ErrorResponse(request.status()));
    (*request)->model_name = std::string(Param(p, "model"));
    (*request)->model_version = std::string(Param(p, "version"));
    ctx->inference->Infer(std::move(request).value(),
                          [reply = std::move(reply)](StatusOr<InferenceResponse> response) {
                            if (!response.ok()) return reply(ErrorResponse(response.status()));
                            reply(JsonResponse(200, WriteV2InferResponse(*response)));
                          });
  };
  router->Add("POST", "/v2/models/{model}/infer", infer);
  router->Add("POST", "/v2/models/{model}/versions/{version}/infer", infer);

  auto index = [ctx](HttpRequest& req, const PathParams&, Reply reply) {
    auto ready_only = ParseIndexRequest(req.body);
    if (!ready_only.ok()) return reply(ErrorResponse(ready_only.status()));
    reply(JsonResponse(200, WriteV2RepositoryIndex(ctx->models->List(), *ready_only)));
  };
  router->Add("POST", "/v2/repository/index", index);
  router->Add("GET", "/v2/repository/index", index);

  auto load = [ctx](HttpRequest&, const PathParams& p, Reply reply) {
    Status s = ctx->repository->LoadModel(std::string(Param(p, "model")));
    if (!s.ok()) return reply(ErrorResponse(s));
    reply(JsonResponse(200, "{}"));
  };
  router->Add("POST", "/v2/repository/models/{model}/load", load);
}

}  // namespace berth::http
