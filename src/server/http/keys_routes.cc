#include "server/http/keys_routes.h"

#include <rapidjson/document.h>

#include "core/logging.h"
#include "server/auth/authorizer.h"
#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

// POST /v2/keys's body.
StatusOr<auth::KeySpec> ParseCreateRequest(const std::string& body) {
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) return Status::InvalidArgument("the key request must be a JSON object");
  RETURN_IF_ERROR(CheckMembers(doc, {"name", "scopes", "rate", "expires_days"}, "the key request"));
  auth::KeySpec spec;
  auto name = doc.FindMember("name");
  if (name == doc.MemberEnd() || !name->value.IsString()) {
    return Status::InvalidArgument("'name' must be a string");
  }
  spec.name.assign(name->value.GetString(), name->value.GetStringLength());
  auto scopes = doc.FindMember("scopes");
  if (scopes == doc.MemberEnd() || !scopes->value.IsArray()) {
    return Status::InvalidArgument("'scopes' must be an array of strings");
  }
  for (const auto& s : scopes->value.GetArray()) {
    if (!s.IsString()) return Status::InvalidArgument("'scopes' must be an array of strings");
    spec.scopes.emplace_back(s.GetString(), s.GetStringLength());
  }
  if (auto rate = doc.FindMember("rate"); rate != doc.MemberEnd()) {
    if (!rate->value.IsNumber()) return Status::InvalidArgument("'rate' must be a number");
    spec.rate = rate->value.GetDouble();
  }
  if (auto days = doc.FindMember("expires_days"); days != doc.MemberEnd()) {
    if (!days->value.IsInt64() || days->value.GetInt64() <= 0) {
      return Status::InvalidArgument("'expires_days' must be a positive whole number");
    }
    spec.expires_days = days->value.GetInt64();
  }
  return spec;
}

void WriteNullable(JsonWriter* w, const std::string& text) {
  if (text.empty()) {
    w->Null();
  } else {
    WriteJsonString(w, text);
  }
}

std::string WriteKeys(const std::vector<ApiKeyRecord>& keys) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("keys");
  w.StartArray();
  for (const ApiKeyRecord& k : keys) {
    w.StartObject();
    w.Key("name");
    WriteJsonString(&w, k.name);
    w.Key("id");
    WriteJsonString(&w, k.id);
    w.Key("scopes");
    w.StartArray();
    for (const std::string& s : k.scopes) WriteJsonString(&w, s);
    w.EndArray();
    w.Key("rate");
    w.Double(k.rate);
    w.Key("created_at");
    WriteJsonString(&w, k.created_at);
    w.Key("expires_at");
    WriteNullable(&w, k.expires_at);
    w.Key("revoked_at");
    WriteNullable(&w, k.revoked_at);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace

void RegisterKeysRoutes(const ServerContext* ctx, Router* router) {
  router->Add("GET", "/v2/keys", auth::Scope::kAdmin,
              [ctx](HttpRequest&, const PathParams&, Reply reply) {
                auto keys = ctx->authorizer->ListKeys();
                if (!keys.ok()) return reply(ErrorResponse(keys.status()));
                reply(JsonResponse(200, WriteKeys(*keys)));
              });
  router->Add("POST", "/v2/keys", auth::Scope::kAdmin,
              [ctx](HttpRequest& req, const PathParams&, Reply reply) {
                auto spec = ParseCreateRequest(req.body);
                if (!spec.ok()) return reply(ErrorResponse(spec.status()));
                auto key = ctx->authorizer->CreateKey(*spec);
                if (!key.ok()) return reply(ErrorResponse(key.status()));
                // The key itself is never logged.
                LOG_INFO("API key created", {{"name", spec->name}, {"by", req.actor}});
                rapidjson::StringBuffer buf;
                JsonWriter w(buf);
                w.StartObject();
                w.Key("name");
                WriteJsonString(&w, spec->name);
                w.Key("key");
                WriteJsonString(&w, *key);
                w.EndObject();
                reply(JsonResponse(200, std::string(buf.GetString(), buf.GetSize())));
              });
  router->Add("DELETE", "/v2/keys/{name}", auth::Scope::kAdmin,
              [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
                const std::string name(PathParam(p, "name"));
                if (Status s = ctx->authorizer->RevokeKey(name); !s.ok()) {
                  return reply(ErrorResponse(s));
                }
                LOG_INFO("API key revoked", {{"name", name}, {"by", req.actor}});
                rapidjson::StringBuffer buf;
                JsonWriter w(buf);
                w.StartObject();
                w.Key("name");
                WriteJsonString(&w, name);
                w.Key("revoked");
                w.Bool(true);
                w.EndObject();
                reply(JsonResponse(200, std::string(buf.GetString(), buf.GetSize())));
              });
}

}  // namespace berth::http
