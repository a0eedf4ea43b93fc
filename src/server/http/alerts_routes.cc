#include "server/http/alerts_routes.h"

#include <rapidjson/stringbuffer.h>

#include <cmath>

#include "monitoring/alerts/webhook.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

void WriteRule(JsonWriter* w, const alerts::RuleView& view) {
  const AlertRule& r = view.rule;
  w->StartObject();
  w->Key("alert");
  WriteJsonString(w, r.name);
  w->Key("source");
  WriteJsonString(w, view.source);
  w->Key("model");
  if (view.model.empty()) {
    w->Null();
  } else {
    WriteJsonString(w, view.model);
  }
  w->Key("metric");
  WriteJsonString(w, r.metric);
  w->Key("op");
  WriteJsonString(w, AlertComparisonName(r.op));
  w->Key("threshold");
  w->Double(r.threshold);
  w->Key("window_seconds");
  w->Double(static_cast<double>(r.window.count()) / 1000);
  w->Key("for_seconds");
  w->Double(static_cast<double>(r.for_duration.count()) / 1000);
  if (!r.feature.empty()) {
    w->Key("feature");
    WriteJsonString(w, r.feature);
  }
  w->Key("labels");
  w->StartObject();
  for (const auto& [k, v] : r.labels) {
    WriteJsonString(w, k);
    WriteJsonString(w, v);
  }
  w->EndObject();
  if (!r.summary.empty()) {
    w->Key("summary");
    WriteJsonString(w, r.summary);
  }
  w->EndObject();
}

}  // namespace

std::string WriteAlerts(const alerts::AlertManager& manager) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("rules");
  w.StartArray();
  for (const alerts::RuleView& r : manager.Rules()) WriteRule(&w, r);
  w.EndArray();
  w.Key("alerts");
  w.StartArray();
  for (const alerts::InstanceView& a : manager.Instances()) {
    w.StartObject();
    w.Key("alert");
    WriteJsonString(&w, a.alert);
    w.Key("source");
    WriteJsonString(&w, a.source);
    w.Key("model");
    WriteJsonString(&w, a.model);
    w.Key("version");
    WriteJsonString(&w, std::to_string(a.version));
    w.Key("state");
    WriteJsonString(&w, alerts::AlertPhaseName(a.phase));
    w.Key("value");
    if (a.value && std::isfinite(*a.value)) {
      w.Double(*a.value);
    } else {
      w.Null();
    }
    w.Key("active_since");
    if (a.phase == alerts::AlertPhase::kInactive) {
      w.Null();
    } else {
      WriteJsonString(&w, alerts::Rfc3339(a.active_since));
    }
    w.Key("firings");
    w.Uint64(a.firings);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void RegisterAlertsRoutes(const alerts::AlertManager* manager, Router* router) {
  router->Add("GET", "/v2/alerts", auth::Scope::kRead,
              [manager](HttpRequest&, const PathParams&, Reply reply) {
                reply(JsonResponse(200, WriteAlerts(*manager)));
              });
}

}  // namespace berth::http
