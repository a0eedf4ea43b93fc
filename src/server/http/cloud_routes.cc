#include "server/http/cloud_routes.h"

#include <cctype>
#include <string>
#include <vector>

#include "server/http/csv_tensor.h"
#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

constexpr std::string_view kTargetModelHeader = "x-amzn-sagemaker-target-model";
constexpr int kUnsupportedMediaType = 415;

// What a platform's JSON body may look like.
struct BodyForm {
  std::vector<std::string_view> list_keys;  // {"<key>": rows}: exactly one of these
  bool bare_list = false;                   // [row, ...] without an object
  bool parameters = false;                  // a "parameters" object, ignored
  bool base64_objects = false;              // {"b64": "..."} elements are BYTES values
};

StatusOr<std::string> ChooseModel(const ServerContext& ctx, std::string_view requested,
                                  const std::string& default_model) {
  if (!requested.empty()) {
    std::string name(requested);
    if (name.ends_with(".tar.gz")) name.resize(name.size() - 7);
    return name;
  }
  if (!default_model.empty()) return default_model;
  const std::vector<ModelEntry> models = ctx.models->List();
  if (models.size() == 1) return models[0].name;
  if (models.empty()) return Status::Unavailable("the model repository has no models");
  std::string names;
  for (const auto& m : models) names += (names.empty() ? "'" : ", '") + m.name + "'";
  return Status::InvalidArgument("the repository has several models (" + names +
                                 "): start berth with --default-model NAME to choose the one "
                                 "that answers");
}

// The rows of a JSON body, as tensors for `inputs`.
StatusOr<std::vector<Tensor>> ParseJsonRows(std::string_view body, const BodyForm& form,
                                            const std::vector<TensorSpec>& inputs) {
  std::string expected;
  for (std::string_view key : form.list_keys) {
    expected += (expected.empty() ? "{\"" : " or {\"") + std::string(key) + "\": [...]}";
  }
  if (form.bare_list) expected += " or a list of rows";
  const RowsBody rows_body{
      .list_keys = form.list_keys,
      .bare_list = form.bare_list,
      .parameters = form.parameters,
      .row_form = RowForm::kAuto,
      .base64_objects = form.base64_objects,
      .not_object = "the request body must be " + expected,
      .expected = expected,
      .missing = "the request body must be " + expected,
  };
  return ReadRowsBody(body, rows_body, inputs);
}

StatusOr<std::string> WritePredictions(const InferenceResponse& response, int64_t rows) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("predictions");
  RETURN_IF_ERROR(WriteRowPredictions(response.outputs, rows, OutputNames::kUnlessSingle, &w));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// The media type of a Content-Type header, lower-cased, without parameters.
std::string MediaType(std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  while (!type.empty() && type.front() == ' ') type.erase(type.begin());
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type;
}

// Decodes a body for `model` (JSON rows, or CSV when `csv`), runs it, replies
// {"predictions": [...]}.
void Predict(const ServerContext* ctx, Protocol protocol, const std::string& name,
             const HttpRequest& req, const BodyForm& form, bool csv, Reply reply) {
  const std::string_view body = req.body;
  const HeaderRoutingKeys keys(req);
  auto model = ctx->models->Resolve(name, "", &keys);
  if (!model.ok()) return reply(ErrorResponse(model.status()));
  const std::vector<TensorSpec>& inputs = (*model)->signature.inputs;
  auto request = std::make_unique<InferenceRequest>();
  request->protocol = protocol;
  if (csv) {
    if (inputs.size() != 1) {
      return reply(ErrorResponse(Status::InvalidArgument(
          "text/csv needs a model with one input, but model '" + name + "' has " +
          std::to_string(inputs.size()) + "; send JSON instead")));
    }
    auto tensor = ParseCsvTensor(body, inputs[0]);
    if (!tensor.ok()) return reply(ErrorResponse(tensor.status()));
    request->inputs.push_back(std::move(tensor).value());
  } else {
    auto tensors = ParseJsonRows(body, form, inputs);
    if (!tensors.ok()) return reply(ErrorResponse(tensors.status()));
    request->inputs = std::move(tensors).value();
  }
  // Every input carries the rows as its first dimension.
  const int64_t rows = request->inputs.empty() ? 0 : request->inputs[0].shape()[0];
  HandToCore(req);
  ctx->inference->Infer(std::move(model).value(), "", &keys, std::move(request),
                        [reply = std::move(reply), rows](StatusOr<InferenceResponse> response) {
                          if (!response.ok()) return reply(ErrorResponse(response.status()));
                          auto out = WritePredictions(*response, rows);
                          if (!out.ok()) return reply(ErrorResponse(out.status()));
                          HttpResponse r = JsonResponse(200, std::move(out).value());
                          AddInferenceHeaders(*response, &r);
                          reply(std::move(r));
                        });
}

void Ready(const ServerContext* ctx, const Reply& reply) {
  if (ctx->IsReady()) return reply(JsonResponse(200, "{\"ready\":true}"));
  reply(ErrorResponse(Status::Unavailable("the server is not ready")));
}

void RegisterSageMaker(const ServerContext* ctx, const PlatformOptions& platform, Router* router) {
  router->Add("GET", "/ping", auth::Scope::kNone,
              [ctx](HttpRequest&, const PathParams&, Reply reply) { Ready(ctx, reply); });
  router->Add("POST", "/invocations", auth::Scope::kInfer,
              [ctx, default_model = platform.default_model](HttpRequest& req, const PathParams&,
                                                            Reply reply) {
                const std::string type = MediaType(req.Header("content-type"));
                const bool csv = type == "text/csv";
                if (!csv && !type.empty() && type != "application/json") {
                  HttpResponse r = ErrorResponse(Status::InvalidArgument(
                      "unsupported Content-Type '" + std::string(req.Header("content-type")) +
                      "': send application/json or text/csv"));
                  r.status = kUnsupportedMediaType;
                  return reply(std::move(r));
                }
                auto name = ChooseModel(*ctx, req.Header(kTargetModelHeader), default_model);
                if (!name.ok()) return reply(ErrorResponse(name.status()));
                static const BodyForm kForm{{"instances"}, true, false};
                Predict(ctx, Protocol::kSageMaker, *name, req, kForm, csv, std::move(reply));
              });
}

void RegisterVertex(const ServerContext* ctx, const PlatformOptions& platform, Router* router) {
  router->Add("GET", platform.health_route, auth::Scope::kNone,
              [ctx](HttpRequest&, const PathParams&, Reply reply) { Ready(ctx, reply); });
  router->Add("POST", platform.predict_route, auth::Scope::kInfer,
              [ctx, default_model = platform.default_model](HttpRequest& req, const PathParams&,
                                                            Reply reply) {
                auto name = ChooseModel(*ctx, "", default_model);
                if (!name.ok()) return reply(ErrorResponse(name.status()));
                // Vertex AI, as TF Serving, sends binary values as {"b64": "..."}.
                static const BodyForm kForm{{"instances"}, false, true, true};
                Predict(ctx, Protocol::kVertex, *name, req, kForm, false, std::move(reply));
              });
}

void RegisterAzure(const ServerContext* ctx, const PlatformOptions& platform, Router* router) {
  router->Add("GET", "/", auth::Scope::kNone, [](HttpRequest&, const PathParams&, Reply reply) {
    reply(JsonResponse(200, "{\"live\":true}"));
  });
  router->Add("GET", "/ready", auth::Scope::kNone,
              [ctx](HttpRequest&, const PathParams&, Reply reply) { Ready(ctx, reply); });
  router->Add("POST", "/score", auth::Scope::kInfer,
              [ctx, default_model = platform.default_model](HttpRequest& req, const PathParams&,
                                                            Reply reply) {
                auto name = ChooseModel(*ctx, "", default_model);
                if (!name.ok()) return reply(ErrorResponse(name.status()));
                static const BodyForm kForm{{"instances", "data"}, true, false};
                Predict(ctx, Protocol::kAzure, *name, req, kForm, false, std::move(reply));
              });
}

}  // namespace

void RegisterCloudRoutes(const ServerContext* ctx, const PlatformOptions& platform,
                         Router* router) {
  switch (platform.platform) {
    case Platform::kSageMaker: return RegisterSageMaker(ctx, platform, router);
    case Platform::kVertex: return RegisterVertex(ctx, platform, router);
    case Platform::kAzure: return RegisterAzure(ctx, platform, router);
    case Platform::kNone: return;
  }
}

}  // namespace berth::http
