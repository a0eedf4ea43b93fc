#include "server/http/shared_memory_routes.h"

#include <rapidjson/document.h>

#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

struct RegisterRequest {
  std::string key;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

StatusOr<RegisterRequest> ParseRegisterRequest(const std::string& body) {
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) {
    return Status::InvalidArgument(
        "the register request must be a JSON object {\"key\", \"offset\", \"byte_size\"}");
  }
  RETURN_IF_ERROR(CheckMembers(doc, {"key", "offset", "byte_size"}, "the register request"));
  RegisterRequest r;
  auto key = doc.FindMember("key");
  if (key == doc.MemberEnd() || !key->value.IsString()) {
    return Status::InvalidArgument("the register request needs 'key', a string");
  }
  r.key.assign(key->value.GetString(), key->value.GetStringLength());
  auto number = [&doc](const char* name, bool required, uint64_t* out) -> Status {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd()) {
      if (!required) return Status::Ok();
      return Status::InvalidArgument(std::string("the register request needs '") + name +
                                     "', a non-negative integer");
    }
    if (!it->value.IsUint64()) {
      return Status::InvalidArgument(std::string("'") + name +
                                     "' must be a non-negative integer");
    }
    *out = it->value.GetUint64();
    return Status::Ok();
  };
  RETURN_IF_ERROR(number("offset", false, &r.offset));
  RETURN_IF_ERROR(number("byte_size", true, &r.byte_size));
  return r;
}

std::string WriteStatus(const std::vector<SharedMemoryRegionInfo>& regions) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartArray();
  for (const auto& r : regions) {
    w.StartObject();
    w.Key("name");
    WriteJsonString(&w, r.name);
    w.Key("key");
    WriteJsonString(&w, r.key);
    w.Key("offset");
    w.Uint64(r.offset);
    w.Key("byte_size");
    w.Uint64(r.byte_size);
    w.EndObject();
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

void RegisterSharedMemoryRoutes(const ServerContext* ctx, Router* router) {
  auto status = [ctx](HttpRequest&, const PathParams& p, Reply reply) {
    if (ctx->shared_memory == nullptr) return reply(JsonResponse(200, "[]"));
    auto regions = ctx->shared_memory->Describe(std::string(PathParam(p, "region")));
    if (!regions.ok()) return reply(ErrorResponse(regions.status()));
    reply(JsonResponse(200, WriteStatus(*regions)));
  };
  router->Add("GET", "/v2/systemsharedmemory/status", auth::Scope::kRead, status);
  router->Add("GET", "/v2/systemsharedmemory/region/{region}/status", auth::Scope::kRead, status);

  // Registering lets requests read and write that memory: an admin change
  // (loopback only without --require-auth).
  router->Add("POST", "/v2/systemsharedmemory/region/{region}/register", auth::Scope::kAdmin,
              [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
                auto r = ParseRegisterRequest(req.body);
                if (!r.ok()) return reply(ErrorResponse(r.status()));
                Status s = ctx->RegisterSharedMemory(std::string(PathParam(p, "region")),
                                                     r->key, r->offset, r->byte_size);
                if (!s.ok()) return reply(ErrorResponse(s));
                reply(JsonResponse(200, "{}"));
              });
  auto unregister = [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
    Status s = ctx->UnregisterSharedMemory(std::string(PathParam(p, "region")));
    if (!s.ok()) return reply(ErrorResponse(s));
    reply(JsonResponse(200, "{}"));
  };
  router->Add("POST", "/v2/systemsharedmemory/unregister", auth::Scope::kAdmin, unregister);
  router->Add("POST", "/v2/systemsharedmemory/region/{region}/unregister", auth::Scope::kAdmin,
              unregister);

  // Triton's words when it is built without GPUs.
  auto cuda = [](HttpRequest&, const PathParams& p, Reply reply) {
    const std::string_view region = PathParam(p, "region");
    reply(ErrorResponse(Status::InvalidArgument(
        std::string("CUDA shared memory") +
        (region.empty() ? "" : " region '" + std::string(region) + "'") +
        " is not supported: GPUs not supported (Berth has no GPU build; use system shared "
        "memory)")));
  };
  router->Add("GET", "/v2/cudasharedmemory/status", auth::Scope::kRead, cuda);
  router->Add("GET", "/v2/cudasharedmemory/region/{region}/status", auth::Scope::kRead, cuda);
  router->Add("POST", "/v2/cudasharedmemory/region/{region}/register", auth::Scope::kAdmin, cuda);
  router->Add("POST", "/v2/cudasharedmemory/region/{region}/unregister", auth::Scope::kAdmin, cuda);
  router->Add("POST", "/v2/cudasharedmemory/unregister", auth::Scope::kAdmin, cuda);
}

}  // namespace berth::http
