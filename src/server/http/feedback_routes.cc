#include "server/http/feedback_routes.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <cmath>

#include "core/model.h"
#include "core/request_id.h"
#include "server/http/drift_routes.h"
#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

// At most this many items in one feedback request: one transaction of the
// store, and one answer.
constexpr size_t kMaxFeedbackItems = 100'000;
constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxTruthBytes = 256;

StatusOr<FeedbackItem> ParseItem(const rapidjson::Value& v, size_t i) {
  const std::string where = "feedback[" + std::to_string(i) + "]";
  if (!v.IsObject()) return Status::InvalidArgument(where + " must be a JSON object");
  RETURN_IF_ERROR(CheckMembers(v, {"id", "row", "label", "value"}, where));
  FeedbackItem item;
  auto id = v.FindMember("id");
  if (id == v.MemberEnd() || !id->value.IsString() || id->value.GetStringLength() == 0 ||
      id->value.GetStringLength() > kMaxIdBytes) {
    return Status::InvalidArgument(where + ".id must be the prediction's id: a string of 1 to " +
                                   std::to_string(kMaxIdBytes) + " bytes");
  }
  item.id.assign(id->value.GetString(), id->value.GetStringLength());
  if (auto row = v.FindMember("row"); row != v.MemberEnd()) {
    if (!row->value.IsInt64() || row->value.GetInt64() < 0) {
      return Status::InvalidArgument(where +
                                     ".row must be a row of the request: an integer from 0");
    }
    item.row = row->value.GetInt64();
  }
  auto label = v.FindMember("label");
  auto value = v.FindMember("value");
  if ((label == v.MemberEnd()) == (value == v.MemberEnd())) {
    return Status::InvalidArgument(where +
                                   " needs exactly one of 'label' (a class) and 'value' "
                                   "(a regression target)");
  }
  const rapidjson::Value& truth = label != v.MemberEnd() ? label->value : value->value;
  const std::string name = where + (label != v.MemberEnd() ? ".label" : ".value");
  if (truth.IsNumber()) {
    const double d = truth.GetDouble();
    if (!std::isfinite(d)) return Status::InvalidArgument(name + " must be finite");
    item.truth = truth.IsInt64() && std::llabs(truth.GetInt64()) < (1LL << 53)
                     ? std::to_string(truth.GetInt64())
                     : feedback::NumberText(d);
  } else if (truth.IsString() && label != v.MemberEnd()) {
    if (truth.GetStringLength() > kMaxTruthBytes) {
      return Status::InvalidArgument(name + " is over " + std::to_string(kMaxTruthBytes) +
                                     " bytes");
    }
    item.truth.assign(truth.GetString(), truth.GetStringLength());
  } else if (truth.IsBool() && label != v.MemberEnd()) {
    item.truth = truth.GetBool() ? "1" : "0";
  } else {
    return Status::InvalidArgument(label != v.MemberEnd()
                                       ? name + " must be a string, a number or a boolean"
                                       : name + " must be a number");
  }
  return item;
}

void WriteMetrics(JsonWriter* w, const char* key, const feedback::MetricValues& values) {
  w->Key(key);
  w->StartObject();
  for (const auto& [name, v] : values) {
    WriteJsonString(w, name);
    w->Double(v);
  }
  w->EndObject();
}

std::string WriteCounts(const std::string& model, const feedback::FeedbackCounts& c) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model_name");
  WriteJsonString(&w, model);
  w.Key("joined");
  w.Int64(c.joined);
  w.Key("unknown");
  w.Int64(c.unknown);
  w.Key("duplicate");
  w.Int64(c.duplicate);
  w.Key("late");
  w.Int64(c.late);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string WriteReport(const Model& model, const feedback::AccuracyReport& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model_name");
  WriteJsonString(&w, model.name);
  w.Key("model_version");
  WriteJsonString(&w, std::to_string(model.version));
  w.Key("task");
  WriteJsonString(&w, r.task);
  w.Key("window");
  w.StartObject();
  w.Key("count");
  w.Int64(r.count);
  w.Key("limit");
  w.Int64(r.window_limit);
  w.Key("start");
  WriteUnixMsTime(&w, r.start_ms);
  w.Key("end");
  WriteUnixMsTime(&w, r.end_ms);
  w.EndObject();
  WriteMetrics(&w, "metrics", r.metrics);
  WriteMetrics(&w, "registered", r.registered);
  WriteMetrics(&w, "drop", r.drop);
  w.Key("feedback");
  w.StartObject();
  w.Key("joined");
  w.Int64(r.feedback.joined);
  w.Key("unknown");
  w.Int64(r.feedback.unknown);
  w.Key("duplicate");
  w.Int64(r.feedback.duplicate);
  w.Key("late");
  w.Int64(r.feedback.late);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

StatusOr<std::vector<FeedbackItem>> ParseFeedbackRequest(std::string_view body) {
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) {
    return Status::InvalidArgument(
        "the feedback request must be a JSON object: {\"feedback\": [{\"id\": "
        "..., \"label\": "
        "...}]}");
  }
  RETURN_IF_ERROR(CheckMembers(doc, {"feedback"}, "the feedback request"));
  auto items = doc.FindMember("feedback");
  if (items == doc.MemberEnd() || !items->value.IsArray() || items->value.Empty()) {
    return Status::InvalidArgument(
        "'feedback' must be a non-empty array of {\"id\", \"row\", "
        "\"label\" or \"value\"}");
  }
  if (items->value.Size() > kMaxFeedbackItems) {
    return Status::InvalidArgument("'feedback' holds " + std::to_string(items->value.Size()) +
                                   " items; at most " + std::to_string(kMaxFeedbackItems) +
                                   " per request");
  }
  std::vector<FeedbackItem> out;
  out.reserve(items->value.Size());
  for (rapidjson::SizeType i = 0; i < items->value.Size(); ++i) {
    ASSIGN_OR_RETURN(FeedbackItem item, ParseItem(items->value[i], i));
    out.push_back(std::move(item));
  }
  return out;
}

void RegisterFeedbackRoutes(feedback::FeedbackMonitor* monitor, const ServerContext* ctx,
                            Router* router) {
  auto post = [monitor, ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    req.access_logged = true;  // not an inference: its answers have no access line
    const std::string_view selector = PathParam(p, "version");
    auto model = ctx->models->Resolve(PathParam(p, "model"), selector);
    if (!model.ok()) return reply(ErrorResponse(model.status()));
    auto items = ParseFeedbackRequest(req.body);
    if (!items.ok()) return reply(ErrorResponse(items.status()));
    std::optional<int64_t> version;
    if (!selector.empty()) version = (*model)->version;
    auto counts = monitor->AddFeedback(**model, version, *items);
    if (!counts.ok()) return reply(ErrorResponse(counts.status()));
    reply(JsonResponse(200, WriteCounts((*model)->name, *counts)));
  };
  router->Add("POST", "/v2/models/{model}/feedback", auth::Scope::kInfer, post);
  router->Add("POST", "/v2/models/{model}/versions/{version}/feedback", auth::Scope::kInfer, post);

  auto get = [monitor, ctx](HttpRequest&, const PathParams& p, Reply reply) {
    auto model = ctx->models->Resolve(PathParam(p, "model"), PathParam(p, "version"));
    if (!model.ok()) return reply(ErrorResponse(model.status()));
    auto report = monitor->Report(**model);
    if (!report.ok()) return reply(ErrorResponse(report.status()));
    reply(JsonResponse(200, WriteReport(**model, *report)));
  };
  router->Add("GET", "/v2/models/{model}/accuracy", auth::Scope::kRead, get);
  router->Add("GET", "/v2/models/{model}/versions/{version}/accuracy", auth::Scope::kRead, get);
}

}  // namespace berth::http
