#include "server/http/v2_routes.h"

#include <rapidjson/document.h>

#include <charconv>

#include "core/model_name.h"
#include "registry/model_repository.h"
#include "registry/store_sync.h"
#include "registry/triton_config.h"
#include "server/http/change_route.h"
#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"
#include "server/http/proto_json.h"
#include "server/http/v2_json_codec.h"

namespace berth::http {
namespace {

// Triton's optional body {"ready": true} limits the index to READY versions.
StatusOr<bool> ParseIndexRequest(const std::string& body) {
  if (body.empty()) return false;
  rapidjson::Document doc;
  if (!ParseJson(body, &doc).ok() || !doc.IsObject()) {
    return Status::InvalidArgument("the repository index request must be a JSON object");
  }
  auto it = doc.FindMember("ready");
  if (it == doc.MemberEnd()) return false;
  if (!it->value.IsBool()) return Status::InvalidArgument("'ready' must be a boolean");
  return it->value.GetBool();
}

// A repository load body: empty, or Triton's {"parameters": {...}}. A
// `file:` parameter's value is base64 (as tritonclient sends it) and is
// decoded here; ServerContext::LoadModel decides what the parameters may be.
StatusOr<std::vector<LoadParameter>> ParseLoadRequest(const std::string& body) {
  std::vector<LoadParameter> parameters;
  if (body.empty()) return parameters;
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) {
    return Status::InvalidArgument("the load request must be a JSON object {\"parameters\": {...}}");
  }
  RETURN_IF_ERROR(CheckMembers(doc, {"parameters"}, "the load request"));
  auto it = doc.FindMember("parameters");
  if (it == doc.MemberEnd()) return parameters;
  if (!it->value.IsObject()) return Status::InvalidArgument("'parameters' must be a JSON object");
  for (const auto& m : it->value.GetObject()) {
    LoadParameter& p = parameters.emplace_back();
    p.name.assign(m.name.GetString(), m.name.GetStringLength());
    if (!m.value.IsString()) continue;  // kOther
    const std::string_view text(m.value.GetString(), m.value.GetStringLength());
    if (p.name.starts_with("file:")) {
      auto bytes = Base64Decode(text);
      if (!bytes.ok()) {
        return Status::InvalidArgument("load parameter '" + PrintableExcerpt(p.name) +
                                       "' must be base64: " + bytes.status().message());
      }
      p.type = LoadParameter::Type::kBytes;
      p.value = std::move(bytes).value();
    } else {
      p.type = LoadParameter::Type::kString;
      p.value.assign(text);
    }
  }
  return parameters;
}

constexpr const char* kHeaderLengthHeader = "Inference-Header-Content-Length";

// The binary tensor extension: the JSON part's length comes in a header; the
// rest of the body is binary tensor data.
StatusOr<size_t> JsonHeaderSize(const HttpRequest& req) {
  const std::string_view value = req.Header("inference-header-content-length");
  if (value.empty()) return req.body.size();
  size_t size = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), size);
  if (ec != std::errc() || end != value.data() + value.size()) {
    return Status::InvalidArgument("Inference-Header-Content-Length '" + std::string(value) +
                                   "' is not a non-negative integer");
  }
  if (size > req.body.size()) {
    return Status::InvalidArgument("Inference-Header-Content-Length " + std::to_string(size) +
                                   " is larger than the body (" +
                                   std::to_string(req.body.size()) + " bytes)");
  }
  return size;
}

}  // namespace

void RegisterV2Routes(const ServerContext* ctx, Router* router) {
  router->Add("GET", "/v2/health/live", auth::Scope::kNone, [](HttpRequest&, const PathParams&, Reply reply) {
    reply(JsonResponse(200, "{\"live\":true}"));
  });
  router->Add("GET", "/v2/health/ready", auth::Scope::kNone, [ctx](HttpRequest&, const PathParams&, Reply reply) {
    if (!ctx->IsReady()) return reply(ErrorResponse(Status::Unavailable("the server is not ready")));
    if (ctx->store_sync == nullptr) return reply(JsonResponse(200, "{\"ready\":true}"));
    // Still ready when the store is unreachable: the replica serves what it
    // holds. The detail says so, for people and monitors.
    const StoreHealth health = ctx->store_sync->Health();
    rapidjson::StringBuffer out;
    JsonWriter w(out);
    w.StartObject();
    w.Key("ready");
    w.Bool(true);
    w.Key("registry");
    w.StartObject();
    w.Key("state");
    w.String(health.degraded ? "degraded" : "ok");
    if (health.degraded) {
      w.Key("error");
      WriteJsonString(&w, health.error);
    }
    w.EndObject();
    w.EndObject();
    reply(JsonResponse(200, std::string(out.GetString(), out.GetSize())));
  });
  router->Add("GET", "/v2", auth::Scope::kRead, [ctx](HttpRequest&, const PathParams&, Reply reply) {
    reply(JsonResponse(200, WriteV2ServerMetadata("berth", ctx->version, ServerExtensions())));
  });

  // Triton's statistics extension. /v2/models/stats comes before the model
  // metadata route, which would take "stats" for a model's name; the
  // per-model routes come after the infer routes, which the router tries in
  // order on every request.
  auto stats = [ctx](HttpRequest&, const PathParams& p, Reply reply) {
    if (ctx->statistics == nullptr) {
      return reply(ErrorResponse(Status::Unavailable("statistics are not collected")));
    }
    auto stats = GetModelStatistics(*ctx->models, *ctx->statistics, PathParam(p, "model"),
                                    PathParam(p, "version"));
    if (!stats.ok()) return reply(ErrorResponse(stats.status()));
    reply(JsonResponse(200, WriteV2ModelStatistics(*stats)));
  };
  router->Add("GET", "/v2/models/stats", auth::Scope::kRead, stats);

  auto metadata = [ctx](HttpRequest&, const PathParams& p, Reply reply) {
    auto metadata = GetModelMetadata(*ctx->models, PathParam(p, "model"), PathParam(p, "version"));
    if (!metadata.ok()) return reply(ErrorResponse(metadata.status()));
    reply(JsonResponse(200, WriteV2ModelMetadata(*metadata)));
  };
  router->Add("GET", "/v2/models/{model}", auth::Scope::kRead, metadata);
  router->Add("GET", "/v2/models/{model}/versions/{version}", auth::Scope::kRead, metadata);

  auto ready = [ctx](HttpRequest&, const PathParams& p, Reply reply) {
    const std::string name(PathParam(p, "model"));
    auto model = ctx->models->Resolve(name, PathParam(p, "version"));
    if (model.ok()) return reply(JsonResponse(200, WriteV2ModelReady(name, true, "")));
    if (model.status().code() != Status::Code::kUnavailable) {
      return reply(ErrorResponse(model.status()));
    }
    reply(JsonResponse(HttpStatusFor(model.status().code()),
                       WriteV2ModelReady(name, false, model.status().message())));
  };
  // Triton's model configuration extension: the configuration the version
  // runs with, in Triton's JSON form, with the version's recorded feature
  // names (kFeatureNamesParameter).
  auto config = [ctx](HttpRequest&, const PathParams& p, Reply reply) {
    auto model = ctx->models->Resolve(PathParam(p, "model"), PathParam(p, "version"));
    if (!model.ok()) return reply(ErrorResponse(model.status()));
    RegistryStore* store = ctx->repository != nullptr ? ctx->repository->store() : nullptr;
    reply(JsonResponse(200, ProtoToJson(ToTritonConfig(**model, store))));
  };
  router->Add("GET", "/v2/models/{model}/config", auth::Scope::kRead, config);
  router->Add("GET", "/v2/models/{model}/versions/{version}/config", auth::Scope::kRead, config);

  router->Add("GET", "/v2/models/{model}/ready", auth::Scope::kRead, ready);
  router->Add("GET", "/v2/models/{model}/versions/{version}/ready", auth::Scope::kRead, ready);

  auto infer = [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    auto json_size = JsonHeaderSize(req);
    if (!json_size.ok()) return reply(ErrorResponse(json_size.status()));
    const std::string_view body(req.body);
    auto request = ParseV2InferRequest(body.substr(0, *json_size), body.substr(*json_size));
    if (!request.ok()) return reply(ErrorResponse(request.status()));
    (*request)->model_name = std::string(PathParam(p, "model"));
    (*request)->model_version = std::string(PathParam(p, "version"));
    BinaryOutputs binary = BinaryOutputsOf(**request);
    const HeaderRoutingKeys keys(req);
    HandToCore(req);
    ctx->inference->Infer(
        std::move(request).value(),
        [reply = std::move(reply), binary = std::move(binary)](
            StatusOr<InferenceResponse> response) {
          if (!response.ok()) return reply(ErrorResponse(response.status()));
          auto encoded = WriteV2InferResponse(*response, binary);
          if (!encoded.ok()) return reply(ErrorResponse(encoded.status()));
          HttpResponse r = JsonResponse(200, std::move(encoded->body));
          AddInferenceHeaders(*response, &r);
          if (encoded->json_size != r.body.size()) {
            r.content_type = "application/octet-stream";
            r.headers.emplace_back(kHeaderLengthHeader, std::to_string(encoded->json_size));
          }
          reply(std::move(r));
        },
        &keys);
  };
  router->Add("POST", "/v2/models/{model}/infer", auth::Scope::kInfer, infer);
  router->Add("POST", "/v2/models/{model}/versions/{version}/infer", auth::Scope::kInfer, infer);
  router->Add("GET", "/v2/models/{model}/stats", auth::Scope::kRead, stats);
  router->Add("GET", "/v2/models/{model}/versions/{version}/stats", auth::Scope::kRead, stats);

  auto index = [ctx](HttpRequest& req, const PathParams&, Reply reply) {
    auto ready_only = ParseIndexRequest(req.body);
    if (!ready_only.ok()) return reply(ErrorResponse(ready_only.status()));
    const std::vector<IndexEntry> entries = RepositoryIndex(ctx->models->List(), *ready_only);
    reply(JsonResponse(200, WriteV2RepositoryIndex(entries)));
  };
  router->Add("POST", "/v2/repository/index", auth::Scope::kRead, index);
  router->Add("GET", "/v2/repository/index", auth::Scope::kRead, index);

  auto load = [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    auto parameters = ParseLoadRequest(req.body);
    if (!parameters.ok()) return reply(ErrorResponse(parameters.status()));
    Status s = ctx->LoadModel(req.actor, std::string(PathParam(p, "model")),
                              std::move(parameters).value());
    if (!s.ok()) return reply(ChangeErrorResponse(s));
    reply(JsonResponse(200, "{}"));
  };
  router->Add("POST", "/v2/repository/models/{model}/load", auth::Scope::kAdmin,
              ChangeRoute(ctx, load));

  // The only unload parameter Triton defines, unload_dependents, concerns
  // ensembles, which Berth does not have: the body is not read.
  auto unload = [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    Status s = ctx->UnloadModel(req.actor, std::string(PathParam(p, "model")));
    if (!s.ok()) return reply(ErrorResponse(s));
    reply(JsonResponse(200, "{}"));
  };
  router->Add("POST", "/v2/repository/models/{model}/unload", auth::Scope::kAdmin,
              ChangeRoute(ctx, unload));
}

}  // namespace berth::http
