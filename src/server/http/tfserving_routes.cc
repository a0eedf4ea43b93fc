#include "server/http/tfserving_routes.h"

#include <charconv>
#include <string>
#include <vector>

#include "server/http/tfserving_api.h"
#include "server/http/tfserving_json_codec.h"

namespace berth::http {
namespace {

void ModelStatus(const ServerContext* ctx, const PathParams& p, Reply reply) {
  const std::string_view name = PathParam(p, "model");
  std::string_view version = PathParam(p, "version");
  std::string labelled;  // the version a label points at
  if (const std::string_view label = PathParam(p, "label"); !label.empty()) {
    auto model = ctx->models->Resolve(name, label);
    if (!model.ok()) return reply(ErrorResponse(model.status()));
    labelled = std::to_string((*model)->version);
    version = labelled;
  }
  auto entry = ctx->models->Find(name);
  if (!entry) {
    return reply(ErrorResponse(UnknownModel(name)));
  }
  std::vector<VersionEntry> versions = entry->versions;
  if (!version.empty()) {
    int64_t number = 0;
    auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), number);
    const bool parsed = ec == std::errc() && end == version.data() + version.size();
    std::erase_if(versions, [&](const VersionEntry& v) { return !parsed || v.version != number; });
  }
  if (versions.empty()) {
    std::string message = "model '" + entry->name + "' has no version";
    message += version.empty() ? std::string() : " '" + std::string(version) + "'";
    if (!entry->reason.empty()) message += ": " + entry->reason;
    return reply(ErrorResponse(Status::NotFound(message)));
  }
  reply(JsonResponse(200, WriteTfServingModelStatus(versions)));
}

// The version a route names: a number (/versions/{version}), a label
// (/labels/{label}: a registry alias), or neither (the model's default).
std::string_view Selector(const PathParams& p) {
  const std::string_view label = PathParam(p, "label");
  return label.empty() ? PathParam(p, "version") : label;
}

void Metadata(const ServerContext* ctx, const PathParams& p, Reply reply) {
  auto model = ctx->models->Resolve(PathParam(p, "model"), Selector(p));
  if (!model.ok()) return reply(ErrorResponse(model.status()));
  reply(JsonResponse(200, WriteTfServingMetadata(**model)));
}

enum class ExampleMethod { kClassify, kRegress };

void ClassifyOrRegress(const ServerContext* ctx, const HttpRequest& req, const PathParams& p,
                       ExampleMethod method, Reply reply) {
  const HeaderRoutingKeys keys(req);
  auto model = ctx->models->Resolve(PathParam(p, "model"), Selector(p), &keys);
  if (!model.ok()) return reply(ErrorResponse(model.status()));
  auto parsed = ParseTfServingExamples(req.body, (*model)->signature.inputs);
  if (!parsed.ok()) return reply(ErrorResponse(parsed.status()));
  HandToCore(req);
  ctx->inference->Infer(
      std::move(model).value(), Selector(p), &keys, std::move(parsed->request),
      [reply = std::move(reply), method, rows = parsed->rows](StatusOr<InferenceResponse> response) {
        if (!response.ok()) return reply(ErrorResponse(response.status()));
        auto body = method == ExampleMethod::kClassify
                        ? WriteTfServingClassifyResponse(*response, rows)
                        : WriteTfServingRegressResponse(*response, rows);
        if (!body.ok()) return reply(ErrorResponse(body.status()));
        HttpResponse r = JsonResponse(200, std::move(body).value());
        AddInferenceHeaders(*response, &r);
        reply(std::move(r));
      });
}

void Predict(const ServerContext* ctx, const HttpRequest& req, const PathParams& p, Reply reply) {
  const std::string name(PathParam(p, "model"));
  const HeaderRoutingKeys keys(req);
  auto model = ctx->models->Resolve(name, Selector(p), &keys);
  if (!model.ok()) return reply(ErrorResponse(model.status()));
  auto parsed = ParseTfServingPredictRequest(req.body, (*model)->signature.inputs);
  if (!parsed.ok()) return reply(ErrorResponse(parsed.status()));
  // Runs on the handle that decoded it (InferenceService): a hot swap in
  // between cannot change or remove the version.
  HandToCore(req);
  ctx->inference->Infer(
      std::move(model).value(), Selector(p), &keys, std::move(parsed->request),
      [reply = std::move(reply), format = parsed->format,
       rows = parsed->rows](StatusOr<InferenceResponse> response) {
        if (!response.ok()) return reply(ErrorResponse(response.status()));
        auto body = WriteTfServingPredictResponse(*response, format, rows);
        if (!body.ok()) return reply(ErrorResponse(body.status()));
        HttpResponse r = JsonResponse(200, std::move(body).value());
        AddInferenceHeaders(*response, &r);
        reply(std::move(r));
      });
}

}  // namespace

void RegisterTfServingRoutes(const ServerContext* ctx, Router* router) {
  auto status = [ctx](HttpRequest&, const PathParams& p, Reply reply) {
    ModelStatus(ctx, p, std::move(reply));
  };
  router->Add("GET", "/v1/models/{model}", auth::Scope::kRead, status);
  router->Add("GET", "/v1/models/{model}/versions/{version}", auth::Scope::kRead, status);
  router->Add("GET", "/v1/models/{model}/labels/{label}", auth::Scope::kRead, status);

  auto predict = [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    Predict(ctx, req, p, std::move(reply));
  };
  router->Add("POST", "/v1/models/{model}:predict", auth::Scope::kInfer, predict);
  router->Add("POST", "/v1/models/{model}/versions/{version}:predict", auth::Scope::kInfer,
              predict);
  router->Add("POST", "/v1/models/{model}/labels/{label}:predict", auth::Scope::kInfer, predict);

  auto metadata = [ctx](HttpRequest&, const PathParams& p, Reply reply) {
    Metadata(ctx, p, std::move(reply));
  };
  router->Add("GET", "/v1/models/{model}/metadata", auth::Scope::kRead, metadata);
  router->Add("GET", "/v1/models/{model}/versions/{version}/metadata", auth::Scope::kRead,
              metadata);
  router->Add("GET", "/v1/models/{model}/labels/{label}/metadata", auth::Scope::kRead, metadata);

  auto classify = [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    ClassifyOrRegress(ctx, req, p, ExampleMethod::kClassify, std::move(reply));
  };
  router->Add("POST", "/v1/models/{model}:classify", auth::Scope::kInfer, classify);
  router->Add("POST", "/v1/models/{model}/versions/{version}:classify", auth::Scope::kInfer,
              classify);
  router->Add("POST", "/v1/models/{model}/labels/{label}:classify", auth::Scope::kInfer, classify);

  auto regress = [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    ClassifyOrRegress(ctx, req, p, ExampleMethod::kRegress, std::move(reply));
  };
  router->Add("POST", "/v1/models/{model}:regress", auth::Scope::kInfer, regress);
  router->Add("POST", "/v1/models/{model}/versions/{version}:regress", auth::Scope::kInfer,
              regress);
  router->Add("POST", "/v1/models/{model}/labels/{label}:regress", auth::Scope::kInfer, regress);
}

}  // namespace berth::http
