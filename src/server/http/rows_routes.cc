#include "server/http/rows_routes.h"

#include <string>

#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

StatusOr<std::unique_ptr<InferenceRequest>> ParseRowsRequest(
    std::string_view body, const std::vector<TensorSpec>& inputs) {
  static const RowsBody kForm{
      .list_keys = {"instances"},
      .row_form = RowForm::kNamed,
      .not_object = "the request body must be a JSON object {\"instances\": [...]}",
      .expected = "'instances'",
      .missing = "the request needs 'instances'",
  };
  auto request = std::make_unique<InferenceRequest>();
  request->protocol = Protocol::kRows;
  ASSIGN_OR_RETURN(request->inputs, ReadRowsBody(body, kForm, inputs));
  return request;
}

StatusOr<std::string> WriteRowsResponse(const InferenceResponse& response, int64_t rows) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model_name");
  w.String(response.model_name.c_str(),
           static_cast<rapidjson::SizeType>(response.model_name.size()));
  w.Key("model_version");
  w.String(response.model_version.c_str(),
           static_cast<rapidjson::SizeType>(response.model_version.size()));
  w.Key("predictions");
  RETURN_IF_ERROR(WriteRowPredictions(response.outputs, rows, OutputNames::kAlways, &w));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

void RegisterRowsRoutes(const ServerContext* ctx, Router* router) {
  auto infer_rows = [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    const std::string name(PathParam(p, "model"));
    const HeaderRoutingKeys keys(req);
    auto model = ctx->models->Resolve(name, PathParam(p, "version"), &keys);
    if (!model.ok()) return reply(ErrorResponse(model.status()));
    auto request = ParseRowsRequest(req.body, (*model)->signature.inputs);
    if (!request.ok()) return reply(ErrorResponse(request.status()));
    // ReadRowsBody gives every input the batch of rows as its first dimension.
    const int64_t rows = (*request)->inputs.empty() ? 0 : (*request)->inputs[0].shape()[0];
    // Runs on the handle whose signature decoded the rows (InferenceService).
    HandToCore(req);
    ctx->inference->Infer(std::move(model).value(), PathParam(p, "version"), &keys,
                          std::move(request).value(),
                          [reply = std::move(reply), rows](StatusOr<InferenceResponse> response) {
                            if (!response.ok()) return reply(ErrorResponse(response.status()));
                            auto body = WriteRowsResponse(*response, rows);
                            if (!body.ok()) return reply(ErrorResponse(body.status()));
                            HttpResponse r = JsonResponse(200, std::move(body).value());
                            AddInferenceHeaders(*response, &r);
                            reply(std::move(r));
                          });
  };
  router->Add("POST", "/v2/models/{model}/infer_rows", auth::Scope::kInfer, infer_rows);
  router->Add("POST", "/v2/models/{model}/versions/{version}/infer_rows", auth::Scope::kInfer,
              infer_rows);
}

}  // namespace berth::http
