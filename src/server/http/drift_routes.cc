#include "server/http/drift_routes.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include <cmath>
#include <ctime>

#include "core/model.h"
#include "registry/model_repository.h"
#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

using drift::DriftReport;
using drift::FeatureKind;
using drift::FeatureReport;

void WriteNumber(JsonWriter* w, const char* key, double v) {
  w->Key(key);
  if (std::isfinite(v)) {
    w->Double(v);
  } else {
    w->Null();
  }
}

void WriteFeature(JsonWriter* w, const FeatureReport& f) {
  w->StartObject();
  w->Key("name");
  WriteJsonString(w, f.name);
  w->Key("kind");
  w->String(f.kind == FeatureKind::kNumeric ? "numeric" : "categorical");
  w->Key("status");
  WriteJsonString(w, f.status);
  w->Key("count");
  w->Int64(f.count);
  w->Key("missing");
  w->Int64(f.missing);
  if (f.status == "ok") {
    if (f.kind == FeatureKind::kNumeric) {
      WriteNumber(w, "psi", f.psi);
      WriteNumber(w, "wasserstein", f.wasserstein);
      WriteNumber(w, "wasserstein_raw", f.wasserstein_raw);
      WriteNumber(w, "wasserstein_scale", f.wasserstein_scale);
      WriteNumber(w, "ks", f.ks);
      WriteNumber(w, "ks_pvalue", f.ks_pvalue);
      WriteNumber(w, "mean", f.mean);
    } else {
      WriteNumber(w, "js", f.js);
      WriteNumber(w, "chi_square", f.chi_square);
      WriteNumber(w, "chi_square_pvalue", f.chi_square_pvalue);
    }
  }
  w->Key("drift");
  w->Bool(f.drift);
  w->EndObject();
}

// The version a drift or baseline route names: a number or an alias, or the
// model's default.
StatusOr<ModelHandle> Find(const ServerContext* ctx, const PathParams& p) {
  return ctx->models->Resolve(PathParam(p, "model"), PathParam(p, "version"));
}

struct BaselineRequest {
  bool from_window = false;
  std::string profile_json;
  std::string reason;
};

StatusOr<BaselineRequest> ParseBaselineRequest(const std::string& body) {
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) {
    return Status::InvalidArgument(
        "the baseline request must be a JSON object: {\"profile\": {...}} or "
        "{\"from_window\": true}");
  }
  RETURN_IF_ERROR(CheckMembers(doc, {"profile", "from_window", "reason"}, "the baseline request"));
  BaselineRequest out;
  auto from = doc.FindMember("from_window");
  if (from != doc.MemberEnd()) {
    if (!from->value.IsBool()) return Status::InvalidArgument("'from_window' must be a boolean");
    out.from_window = from->value.GetBool();
  }
  auto reason = doc.FindMember("reason");
  if (reason != doc.MemberEnd()) {
    if (!reason->value.IsString()) return Status::InvalidArgument("'reason' must be a string");
    out.reason.assign(reason->value.GetString(), reason->value.GetStringLength());
    if (out.reason.size() > 1024) return Status::InvalidArgument("'reason' is over 1024 bytes");
  }
  auto profile = doc.FindMember("profile");
  if ((profile != doc.MemberEnd()) == out.from_window) {
    return Status::InvalidArgument("the baseline request needs exactly one of 'profile' and "
                                   "\"from_window\": true");
  }
  if (profile != doc.MemberEnd()) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    profile->value.Accept(w);
    // Checked here, so that the store only ever holds a valid profile.
    ASSIGN_OR_RETURN(drift::BaselineProfile parsed,
                     drift::ParseBaseline(std::string_view(buf.GetString(), buf.GetSize())));
    out.profile_json = drift::BaselineToJson(parsed);
  }
  return out;
}

}  // namespace

std::string WriteDriftReport(const std::string& model, int64_t version, const DriftReport& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model_name");
  WriteJsonString(&w, model);
  w.Key("model_version");
  WriteJsonString(&w, std::to_string(version));
  w.Key("status");
  WriteJsonString(&w, r.status);
  w.Key("baseline");
  if (r.baseline_source.empty()) {
    w.Null();
  } else {
    WriteJsonString(&w, r.baseline_source);
  }
  w.Key("window");
  w.StartObject();
  w.Key("count");
  w.Int64(r.count);
  w.Key("start");
  WriteUnixMsTime(&w, r.start_ms);
  w.Key("end");
  WriteUnixMsTime(&w, r.end_ms);
  w.EndObject();
  w.Key("drift");
  w.Bool(r.drift);
  w.Key("features");
  w.StartArray();
  for (const FeatureReport& f : r.features) WriteFeature(&w, f);
  w.EndArray();
  w.Key("prediction");
  if (r.prediction) {
    WriteFeature(&w, *r.prediction);
  } else {
    w.Null();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void WriteUnixMsTime(JsonWriter* w, int64_t unix_ms) {
  if (unix_ms == 0) {
    w->Null();
    return;
  }
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[40];
  const size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(text + n, sizeof(text) - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  w->String(text);
}

void RegisterDriftRoutes(drift::DriftMonitor* monitor, const ServerContext* ctx, Router* router) {
  auto report = [monitor, ctx](HttpRequest&, const PathParams& p, Reply reply) {
    auto model = Find(ctx, p);
    if (!model.ok()) return reply(ErrorResponse(model.status()));
    reply(JsonResponse(200, WriteDriftReport((*model)->name, (*model)->version,
                                             monitor->Report(**model))));
  };
  router->Add("GET", "/v2/models/{model}/drift", auth::Scope::kRead, report);
  router->Add("GET", "/v2/models/{model}/versions/{version}/drift", auth::Scope::kRead, report);

  auto show = [monitor, ctx](HttpRequest&, const PathParams& p, Reply reply) {
                auto model = Find(ctx, p);
                if (!model.ok()) return reply(ErrorResponse(model.status()));
                auto baseline = monitor->Baseline(**model);
                if (!baseline) {
                  return reply(ErrorResponse(Status::NotFound(
                      "model '" + (*model)->name + "' version " +
                      std::to_string((*model)->version) + " has no baseline")));
                }
                std::string body = "{\"source\":\"" + baseline->source + "\",\"profile\":" +
                                   drift::BaselineToJson(baseline->profile) + "}";
                reply(JsonResponse(200, std::move(body)));
  };
  router->Add("GET", "/v2/models/{model}/baseline", auth::Scope::kRead, show);
  router->Add("GET", "/v2/models/{model}/versions/{version}/baseline", auth::Scope::kRead, show);

  auto change = [monitor, ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    const std::string name(PathParam(p, "model"));
    if (Status s = ctx->CheckChange(req.actor, name); !s.ok()) {
      return reply(ChangeErrorResponse(s));
    }
    auto model = Find(ctx, p);
    if (!model.ok()) return reply(ErrorResponse(model.status()));
    RegistryStore* store = ctx->repository != nullptr ? ctx->repository->store() : nullptr;
    if (store == nullptr) {
      return reply(ErrorResponse(Status::FailedPrecondition(
          "the server runs without a registry store (--registry none): baselines cannot be kept")));
    }
    BaselineRequest request;
    if (req.method == "POST") {
      auto parsed = ParseBaselineRequest(req.body);
      if (!parsed.ok()) return reply(ErrorResponse(parsed.status()));
      request = std::move(parsed).value();
      if (request.from_window) {
        auto profile = monitor->ProfileWindow(**model);
        if (!profile.ok()) return reply(ErrorResponse(profile.status()));
        request.profile_json = drift::BaselineToJson(*profile);
      }
    }
    Status stored = store->SetBaseline((*model)->name, (*model)->version, request.profile_json,
                                       req.actor, request.reason);
    if (!stored.ok()) return reply(ChangeErrorResponse(stored));
    monitor->Reset((*model)->name, (*model)->version);
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    w.Key("model_name");
    WriteJsonString(&w, (*model)->name);
    w.Key("model_version");
    WriteJsonString(&w, std::to_string((*model)->version));
    w.Key("baseline");
    if (request.profile_json.empty()) {
      w.Null();
    } else {
      w.String("store");
    }
    w.EndObject();
    reply(JsonResponse(200, std::string(buf.GetString(), buf.GetSize())));
  };
  router->Add("POST", "/v2/models/{model}/baseline", auth::Scope::kAdmin, change);
  router->Add("DELETE", "/v2/models/{model}/baseline", auth::Scope::kAdmin, change);
  router->Add("POST", "/v2/models/{model}/versions/{version}/baseline", auth::Scope::kAdmin, change);
  router->Add("DELETE", "/v2/models/{model}/versions/{version}/baseline", auth::Scope::kAdmin, change);
}

}  // namespace berth::http
