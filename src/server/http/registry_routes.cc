#include "server/http/registry_routes.h"

#include <rapidjson/document.h>

#include <array>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "core/model_name.h"
#include "monitoring/metrics.h"
#include "registry/model_repository.h"
#include "registry/version_files.h"
#include "server/http/change_route.h"
#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

void WriteOptional(JsonWriter* w, const std::optional<int64_t>& v) {
  if (v) {
    w->Int64(*v);
  } else {
    w->Null();
  }
}

// The optional "alias" (when `alias` is not null) and "reason" members of a
// change's body, both strings; a reason is at most 1 KiB.
Status ReadAliasAndReason(const rapidjson::Document& doc, std::string* alias, std::string* reason) {
  for (auto [key, field] : {std::pair{"alias", alias}, std::pair{"reason", reason}}) {
    auto m = doc.FindMember(key);
    if (m == doc.MemberEnd() || field == nullptr) continue;
    if (!m->value.IsString()) {
      return Status::InvalidArgument(std::string("'") + key + "' must be a string");
    }
    field->assign(m->value.GetString(), m->value.GetStringLength());
  }
  if (reason->size() > 1024) return Status::InvalidArgument("'reason' is over 1024 bytes");
  return Status::Ok();
}

// A promote or rollback body: {"version": N, "alias": "...", "reason": "..."}
// (`version` only where `needs_version`). An empty body takes the defaults.
struct MoveRequest {
  int64_t version = 0;
  std::string alias = std::string(kProductionAlias);
  std::string reason;
};

StatusOr<MoveRequest> ParseMoveRequest(const std::string& body, bool needs_version) {
  MoveRequest out;
  if (body.empty()) {
    if (needs_version) return Status::InvalidArgument("the request needs {\"version\": N}");
    return out;
  }
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) return Status::InvalidArgument("the request body must be a JSON object");
  if (needs_version) {
    RETURN_IF_ERROR(CheckMembers(doc, {"version", "alias", "reason"}, "the promote request"));
  } else {
    RETURN_IF_ERROR(CheckMembers(doc, {"alias", "reason"}, "the rollback request"));
  }
  if (needs_version) {
    auto v = doc.FindMember("version");
    if (v == doc.MemberEnd()) return Status::InvalidArgument("the request needs 'version'");
    if (v->value.IsInt64()) {
      out.version = v->value.GetInt64();
    } else if (v->value.IsString()) {
      ASSIGN_OR_RETURN(out.version, ParseVersionNumber(std::string_view(
                                        v->value.GetString(), v->value.GetStringLength())));
    } else {
      return Status::InvalidArgument("'version' must be a version number");
    }
    if (out.version <= 0) return Status::InvalidArgument("'version' must be a positive integer");
  }
  RETURN_IF_ERROR(ReadAliasAndReason(doc, &out.alias, &out.reason));
  return out;
}

// A split body: {"versions": {"3": 90, "4": 10}, "alias": "...",
// "sticky_key": "X-User-Id", "reason": "..."}.
struct SplitRequest {
  std::vector<WeightedVersion> split;
  std::string alias = std::string(kProductionAlias);
  std::string sticky_key;
  std::string reason;
};

StatusOr<SplitRequest> ParseSplitRequest(const std::string& body) {
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) return Status::InvalidArgument("the request body must be a JSON object");
  RETURN_IF_ERROR(
      CheckMembers(doc, {"versions", "alias", "sticky_key", "reason"}, "the split request"));
  SplitRequest out;
  auto versions = doc.FindMember("versions");
  if (versions == doc.MemberEnd() || !versions->value.IsObject()) {
    return Status::InvalidArgument(
        "the split request needs 'versions': {\"<version>\": <weight>, ...}");
  }
  for (const auto& m : versions->value.GetObject()) {
    ASSIGN_OR_RETURN(int64_t version,
                     ParseVersionNumber(std::string_view(m.name.GetString(), m.name.GetStringLength())));
    if (!m.value.IsInt() || m.value.GetInt() <= 0) {
      return Status::InvalidArgument("the weight of version " + std::to_string(version) +
                                     " must be a positive integer");
    }
    out.split.push_back({version, m.value.GetInt()});
  }
  if (auto key = doc.FindMember("sticky_key"); key != doc.MemberEnd()) {
    if (!key->value.IsString()) return Status::InvalidArgument("'sticky_key' must be a string");
    ASSIGN_OR_RETURN(out.sticky_key, ValidateStickyKey(std::string_view(
                                         key->value.GetString(), key->value.GetStringLength())));
  }
  RETURN_IF_ERROR(ReadAliasAndReason(doc, &out.alias, &out.reason));
  return out;
}

// An archive, restore or delete body: {"reason": "...", "force": true}
// (`force` not for a restore); an empty body takes the defaults.
struct VersionStatusRequest {
  bool force = false;
  std::string reason;
};

StatusOr<VersionStatusRequest> ParseVersionStatusRequest(const std::string& body,
                                                         bool takes_force) {
  VersionStatusRequest out;
  if (body.empty()) return out;
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) return Status::InvalidArgument("the request body must be a JSON object");
  if (takes_force) {
    RETURN_IF_ERROR(CheckMembers(doc, {"force", "reason"}, "the request"));
  } else {
    RETURN_IF_ERROR(CheckMembers(doc, {"reason"}, "the restore request"));
  }
  if (auto force = doc.FindMember("force"); force != doc.MemberEnd()) {
    if (!force->value.IsBool()) return Status::InvalidArgument("'force' must be true or false");
    out.force = force->value.GetBool();
  }
  RETURN_IF_ERROR(ReadAliasAndReason(doc, nullptr, &out.reason));
  return out;
}

// What GET /v2/registry/models/{m} says of a version: ARCHIVED or DELETED
// as the store records it, else its live state, else REGISTERED.
std::string_view VersionState(const VersionEntry* live, const VersionRecord* record) {
  if (record != nullptr && record->status == VersionStatus::kArchived) return "ARCHIVED";
  if (record != nullptr && record->status == VersionStatus::kDeleted) return "DELETED";
  return live != nullptr ? ModelStateName(live->state) : "REGISTERED";
}

// {"<alias>": "<header>"} for the splits that read a sticky key.
void WriteStickyKeys(JsonWriter* w, const std::optional<ModelEntry>& entry) {
  w->StartObject();
  if (entry) {
    for (const auto& [alias, header] : entry->split_keys) {
      w->Key(alias.c_str(), static_cast<rapidjson::SizeType>(alias.size()));
      WriteJsonString(w, header);
    }
  }
  w->EndObject();
}

// A shadow body: {"version": N, "percent": 1..100, "reason": "..."}, or
// {"percent": 0} to stop.
struct ShadowRequest {
  int64_t version = 0;
  int percent = 0;
  std::string reason;
};

StatusOr<ShadowRequest> ParseShadowRequest(const std::string& body) {
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) return Status::InvalidArgument("the request body must be a JSON object");
  RETURN_IF_ERROR(CheckMembers(doc, {"version", "percent", "reason"}, "the shadow request"));
  ShadowRequest out;
  auto percent = doc.FindMember("percent");
  if (percent == doc.MemberEnd() || !percent->value.IsInt() || percent->value.GetInt() < 0 ||
      percent->value.GetInt() > 100) {
    return Status::InvalidArgument("the shadow request needs 'percent': 1 to 100, or 0 to stop");
  }
  out.percent = percent->value.GetInt();
  auto version = doc.FindMember("version");
  if (out.percent > 0) {
    if (version == doc.MemberEnd() || !version->value.IsInt64() || version->value.GetInt64() <= 0) {
      return Status::InvalidArgument("the shadow request needs 'version': a version number");
    }
    out.version = version->value.GetInt64();
  } else if (version != doc.MemberEnd()) {
    return Status::InvalidArgument("'version' goes with a percent above 0");
  }
  RETURN_IF_ERROR(ReadAliasAndReason(doc, nullptr, &out.reason));
  return out;
}

void WriteSplits(JsonWriter* w, const ModelEntry& entry) {
  w->StartObject();
  for (const auto& [alias, split] : entry.splits) {
    w->Key(alias.c_str(), static_cast<rapidjson::SizeType>(alias.size()));
    w->StartObject();
    for (const WeightedVersion& v : split) {
      const std::string key = std::to_string(v.version);
      w->Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
      w->Int(v.weight);
    }
    w->EndObject();
  }
  w->EndObject();
}

// "aliases", "splits" and "sticky_keys" of a model (empty objects when it is
// not loaded), as the model's page and the list both show them.
void WriteAliasTables(JsonWriter* w, const std::optional<ModelEntry>& entry) {
  w->Key("aliases");
  w->StartObject();
  if (entry) {
    for (const auto& [alias, version] : entry->aliases) {
      w->Key(alias.c_str(), static_cast<rapidjson::SizeType>(alias.size()));
      w->Int64(version);
    }
  }
  w->EndObject();
  w->Key("splits");
  if (entry) {
    WriteSplits(w, *entry);
  } else {
    w->StartObject();
    w->EndObject();
  }
  w->Key("sticky_keys");
  WriteStickyKeys(w, entry);
}

HttpResponse MoveResponse(const std::string& model, const std::string& alias,
                          const AliasMove& move) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model");
  WriteJsonString(&w, model);
  w.Key("alias");
  WriteJsonString(&w, alias);
  w.Key("version");
  w.Int64(move.version);
  w.Key("previous");
  WriteOptional(&w, move.previous);
  w.EndObject();
  return JsonResponse(200, std::string(buf.GetString(), buf.GetSize()));
}

// `json`, a JSON object the store holds (checked when it was stored), as is;
// "{}" if empty.
// The shadow and how it compares with the live answers so far, from the
// counters /metrics exports as berth_shadow_*: rates and means are null
// until there is something to divide by.
void WriteShadow(JsonWriter* w, const ServerContext& ctx, const std::string& name,
                 const ShadowTarget& shadow) {
  const Metrics::ShadowCounters c = ctx.metrics == nullptr
                                        ? Metrics::ShadowCounters{}
                                        : ctx.metrics->ShadowCountersOf(
                                              name, std::to_string(shadow.version));
  const auto ratio = [w](double part, uint64_t whole) {
    whole == 0 ? w->Null() : w->Double(part / static_cast<double>(whole));
  };
  const uint64_t compared = c.agree + c.differ;
  w->StartObject();
  w->Key("version");
  w->Int64(shadow.version);
  w->Key("percent");
  w->Int(shadow.percent);
  w->Key("requests");
  w->Uint64(compared + c.failed);
  w->Key("agree");
  w->Uint64(c.agree);
  w->Key("differ");
  w->Uint64(c.differ);
  w->Key("failed");
  w->Uint64(c.failed);
  w->Key("agreement_rate");
  ratio(static_cast<double>(c.agree), compared);
  w->Key("compared_elements");
  w->Uint64(c.float_elements);
  w->Key("mean_abs_difference");
  ratio(c.abs_difference_sum, c.float_elements);
  w->Key("mean_latency_seconds");
  ratio(static_cast<double>(c.duration_ns) * 1e-9, compared + c.failed);
  w->EndObject();
}

void WriteRawObject(JsonWriter* w, std::string_view json) {
  if (json.empty()) json = "{}";
  w->RawValue(json.data(), json.size(), rapidjson::kObjectType);
}

// The store's records of `name` joined with the live table's entry (either
// may be missing: a registered version that is not loaded, or a model served
// without a store).
StatusOr<std::string> WriteModel(const ServerContext& ctx, const std::string& name) {
  std::optional<ModelEntry> entry = ctx.models->Find(name);
  std::vector<VersionRecord> records;
  std::vector<EvaluationRecord> evaluations;
  RegistryStore* store = ctx.repository->store();
  if (store != nullptr) {
    ASSIGN_OR_RETURN(records, store->Versions(name));
    ASSIGN_OR_RETURN(evaluations, store->Evaluations(name));
  }
  if (!entry && records.empty()) {
    return Status::NotFound("model '" + name + "' is not in the registry");
  }
  std::set<int64_t> numbers;
  for (const auto& r : records) numbers.insert(r.version);
  if (entry) {
    for (const auto& v : entry->versions) numbers.insert(v.version);
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("name");
  WriteJsonString(&w, name);
  WriteAliasTables(&w, entry);
  w.Key("shadow");
  if (entry && entry->shadow) {
    WriteShadow(&w, ctx, name, *entry->shadow);
  } else {
    w.Null();
  }
  w.Key("default_version");
  const VersionEntry* def = entry ? entry->Default() : nullptr;
  WriteOptional(&w, def ? std::optional<int64_t>(def->version) : std::nullopt);
  w.Key("versions");
  w.StartArray();
  for (int64_t number : numbers) {
    const VersionEntry* live = entry ? entry->FindVersion(number) : nullptr;
    const VersionRecord* record = nullptr;
    for (const auto& r : records) {
      if (r.version == number) record = &r;
    }
    w.StartObject();
    w.Key("version");
    w.Int64(number);
    w.Key("state");
    WriteJsonString(&w, VersionState(live, record));
    w.Key("reason");
    WriteJsonString(&w, live ? live->reason : "");
    if (live != nullptr && live->model != nullptr && live->model->memory != nullptr) {
      // What the version holds against --memory-budget.
      w.Key("memory_bytes");
      w.Uint64(live->model->memory->bytes());
    }
    w.Key("aliases");
    w.StartArray();
    if (entry) {
      for (const auto& [alias, version] : entry->aliases) {
        bool in_split = false;
        if (auto split = entry->splits.find(alias); split != entry->splits.end()) {
          for (const WeightedVersion& v : split->second) in_split = in_split || v.version == number;
        }
        if (version == number || in_split) WriteJsonString(&w, alias);
      }
    }
    w.EndArray();
    if (record != nullptr) {
      w.Key("digest");
      WriteJsonString(&w, record->digest);
      w.Key("size");
      w.Int64(record->size);
      if (!record->files.empty()) {
        // A version that is a directory: each file, and the set's digest.
        w.Key("files_digest");
        WriteJsonString(&w, FilesDigest(record->files));
        w.Key("files");
        w.StartArray();
        for (const VersionFile& f : record->files) {
          w.StartObject();
          w.Key("name");
          WriteJsonString(&w, f.name);
          w.Key("digest");
          WriteJsonString(&w, f.digest);
          w.Key("size");
          w.Int64(f.size);
          w.EndObject();
        }
        w.EndArray();
      }
      w.Key("format");
      WriteJsonString(&w, record->format);
      w.Key("source");
      WriteJsonString(&w, record->source);
      w.Key("created_at");
      WriteJsonString(&w, record->created_at);
      w.Key("created_by");
      WriteJsonString(&w, record->created_by);
      // Metadata and evaluations are JSON objects already (checked where
      // they entered: registry/version_metadata.h).
      w.Key("signature");
      if (record->signature_json.empty()) {
        w.Null();  // recorded the first time the version loads
      } else {
        WriteRawObject(&w, record->signature_json);
      }
      w.Key("metadata");
      WriteRawObject(&w, record->metadata_json);
      w.Key("evaluations");
      w.StartArray();
      for (const EvaluationRecord& e : evaluations) {
        if (e.version != number) continue;
        w.StartObject();
        w.Key("at");
        WriteJsonString(&w, e.at);
        w.Key("by");
        WriteJsonString(&w, e.actor);
        w.Key("evaluation");
        WriteRawObject(&w, e.evaluation_json);
        w.EndObject();
      }
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

StatusOr<std::string> WriteModels(const ServerContext& ctx) {
  // Per model: its versions (live or registered), then those archived and
  // deleted, which are listed apart.
  std::map<std::string, std::array<std::set<int64_t>, 3>> versions;
  for (const ModelEntry& e : ctx.models->List()) {
    auto& set = versions[e.name][0];
    for (const auto& v : e.versions) set.insert(v.version);
  }
  if (RegistryStore* store = ctx.repository->store(); store != nullptr) {
    ASSIGN_OR_RETURN(std::vector<std::string> names, store->Models());
    for (const std::string& name : names) {
      ASSIGN_OR_RETURN(std::vector<VersionRecord> records, store->Versions(name));
      auto& sets = versions[name];
      for (const auto& r : records) {
        const size_t which = r.status == VersionStatus::kArchived  ? 1
                             : r.status == VersionStatus::kDeleted ? 2
                                                                   : 0;
        sets[which].insert(r.version);
        if (which != 0) sets[0].erase(r.version);
      }
    }
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("models");
  w.StartArray();
  for (const auto& [name, sets] : versions) {
    const std::optional<ModelEntry> entry = ctx.models->Find(name);
    w.StartObject();
    w.Key("name");
    WriteJsonString(&w, name);
    WriteAliasTables(&w, entry);
    for (size_t which = 0; which < 3; ++which) {
      w.Key(which == 0 ? "versions" : which == 1 ? "archived" : "deleted");
      w.StartArray();
      for (int64_t v : sets[which]) w.Int64(v);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

StatusOr<std::string> WriteHistory(const ServerContext& ctx, const std::string& name) {
  RegistryStore* store = ctx.repository->store();
  if (store == nullptr) {
    return Status::Unavailable(kNoRegistryStore);
  }
  ASSIGN_OR_RETURN(std::vector<AuditRecord> history, store->History(name));
  if (history.empty() && !ctx.models->Find(name)) {
    return Status::NotFound("model '" + name + "' is not in the registry");
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model");
  WriteJsonString(&w, name);
  w.Key("history");
  w.StartArray();
  for (const AuditRecord& r : history) {
    w.StartObject();
    w.Key("id");
    w.Int64(r.id);
    w.Key("at");
    WriteJsonString(&w, r.at);
    w.Key("actor");
    WriteJsonString(&w, r.actor);
    w.Key("action");
    WriteJsonString(&w, r.action);
    w.Key("alias");
    if (r.alias.empty()) {
      w.Null();
    } else {
      WriteJsonString(&w, r.alias);
    }
    w.Key("from");
    WriteOptional(&w, r.from_version);
    w.Key("to");
    WriteOptional(&w, r.to_version);
    w.Key("reason");
    WriteJsonString(&w, r.reason);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// A push: the artifact's bytes, preceded by up to three framed parts, each
// present when its header gives its length (as the binary tensor extension
// frames its JSON header), in this order: a JSON object of metadata
// (Berth-Metadata-Length), the model's config file (Berth-Config-Length),
// and the file list of a version that is a directory (Berth-Files-Length).
// The body is in memory, or (the server streams push bodies to disk) in a
// file: then only the framed parts are read.
struct PushRequest {
  std::string metadata_json;  // checked by the repository (CheckVersionMetadata)
  std::string config;         // checked by the repository (ModelRepository::Push)
  ArtifactSource artifact;
  bool allow_signature_change = false;
  std::string reason;  // the Berth-Reason header, percent-decoded
};

StatusOr<PushRequest> ParsePushRequest(const HttpRequest& req) {
  PushRequest out;
  std::error_code ec;
  const uint64_t body_size =
      req.upload ? std::filesystem::file_size(req.upload->path, ec) : req.body.size();
  if (ec) return Status::Internal("cannot read the upload: " + ec.message());
  constexpr std::array<const char*, 3> kHeaders = {"Berth-Metadata-Length",
                                                   "Berth-Config-Length", "Berth-Files-Length"};
  std::array<size_t, 3> lengths = {0, 0, 0};
  size_t framed = 0;  // the bytes of the parts so far; none may pass the body's end
  constexpr std::array<const char*, 3> kKeys = {"berth-metadata-length", "berth-config-length",
                                                "berth-files-length"};  // as HttpRequest keeps them
  for (size_t i = 0; i < kHeaders.size(); ++i) {
    const std::string_view header = req.Header(kKeys[i]);
    if (header.empty()) continue;
    auto [end, parse_ec] =
        std::from_chars(header.data(), header.data() + header.size(), lengths[i]);
    if (parse_ec != std::errc() || end != header.data() + header.size() ||
        lengths[i] > (1u << 20) || framed + lengths[i] > body_size) {
      return Status::InvalidArgument(std::string(kHeaders[i]) +
                                     " must be a byte count within the body and at most 1 MiB");
    }
    framed += lengths[i];
  }
  std::string files_json;
  std::array<std::string*, 3> parts = {&out.metadata_json, &out.config, &files_json};
  if (req.upload) {
    out.artifact.file = req.upload->path;
    out.artifact.offset = framed;
    std::ifstream in(req.upload->path, std::ios::binary);
    for (size_t i = 0; i < parts.size(); ++i) {
      parts[i]->resize(lengths[i]);
      if (!in.read(parts[i]->data(), static_cast<std::streamsize>(lengths[i]))) {
        return Status::Internal("cannot read the upload's framed parts");
      }
    }
  } else {
    size_t at = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      *parts[i] = req.body.substr(at, lengths[i]);
      at += lengths[i];
    }
    out.artifact.bytes = std::string_view(req.body).substr(framed);
  }
  if (!req.Header("berth-files-length").empty()) {
    ASSIGN_OR_RETURN(out.artifact.files, ParsePushedFiles(files_json, body_size - framed));
  }
  if (!req.Header("berth-config-length").empty() && out.config.empty()) {
    return Status::InvalidArgument("Berth-Config-Length frames an empty config");
  }
  // Why (push --reason): UTF-8, percent-encoded as a header value must be.
  for (std::string_view in = req.Header("berth-reason"); !in.empty(); in.remove_prefix(1)) {
    const auto hex = [](char c) {
      return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    };
    if (in[0] != '%') {
      out.reason += in[0];
    } else if (in.size() >= 3 && hex(in[1]) >= 0 && hex(in[2]) >= 0) {
      out.reason += static_cast<char>(hex(in[1]) * 16 + hex(in[2]));
      in.remove_prefix(2);
    } else {
      return Status::InvalidArgument("Berth-Reason must be percent-encoded UTF-8");
    }
  }
  if (out.reason.size() > 1024 || !IsValidUtf8(out.reason)) {
    return Status::InvalidArgument("Berth-Reason must be percent-encoded UTF-8 of at most 1024 bytes");
  }
  if (!req.query.empty()) {
    if (req.query == "allow_signature_change=true") {
      out.allow_signature_change = true;
    } else if (req.query != "allow_signature_change=false") {
      return Status::InvalidArgument("unknown query '" + PrintableExcerpt(req.query) +
                                     "' (expected allow_signature_change=true|false)");
    }
  }
  return out;
}

// {"model", "version"}: what a push and an evaluation answer.
HttpResponse VersionResponse(const std::string& name, int64_t version) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model");
  WriteJsonString(&w, name);
  w.Key("version");
  w.Int64(version);
  w.EndObject();
  return JsonResponse(200, std::string(buf.GetString(), buf.GetSize()));
}

void ReplyWith(const StatusOr<std::string>& body, const Reply& reply) {
  if (!body.ok()) return reply(ErrorResponse(body.status()));
  reply(JsonResponse(200, *body));
}

}  // namespace

bool IsPushTarget(std::string_view method, std::string_view target) {
  if (method != "POST") return false;
  target = target.substr(0, target.find('?'));
  constexpr std::string_view kPrefix = "/v2/registry/models/";
  constexpr std::string_view kSuffix = "/versions";
  if (!target.starts_with(kPrefix) || !target.ends_with(kSuffix)) return false;
  const std::string_view model =
      target.substr(kPrefix.size(), target.size() - kPrefix.size() - kSuffix.size());
  return !model.empty() && model.find('/') == std::string_view::npos;
}

void RegisterRegistryRoutes(const ServerContext* ctx, Router* router) {
  router->Add(
      "GET", "/v2/registry/models", auth::Scope::kRead,
      [ctx](HttpRequest&, const PathParams&, Reply reply) { ReplyWith(WriteModels(*ctx), reply); });
  router->Add("GET", "/v2/registry/models/{model}", auth::Scope::kRead,
              [ctx](HttpRequest&, const PathParams& p, Reply reply) {
                const std::string name(PathParam(p, "model"));
                if (Status s = ValidateModelName(name); !s.ok()) return reply(ErrorResponse(s));
                ReplyWith(WriteModel(*ctx, name), reply);
              });
  router->Add("GET", "/v2/registry/models/{model}/history", auth::Scope::kRead,
              [ctx](HttpRequest&, const PathParams& p, Reply reply) {
                const std::string name(PathParam(p, "model"));
                if (Status s = ValidateModelName(name); !s.ok()) return reply(ErrorResponse(s));
                ReplyWith(WriteHistory(*ctx, name), reply);
              });
  router->Add("POST", "/v2/registry/models/{model}/promote", auth::Scope::kAdmin,
              ChangeRoute(ctx, [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
                auto move = ParseMoveRequest(req.body, true);
                if (!move.ok()) return reply(ErrorResponse(move.status()));
                const std::string name(PathParam(p, "model"));
                auto done = ctx->Promote(req.actor, name, move->version, move->alias, move->reason);
                if (!done.ok()) return reply(ChangeErrorResponse(done.status()));
                reply(MoveResponse(name, move->alias, *done));
              }));
  router->Add("POST", "/v2/registry/models/{model}/versions", auth::Scope::kAdmin,
              ChangeRoute(ctx, [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
                auto push = ParsePushRequest(req);
                if (!push.ok()) return reply(ErrorResponse(push.status()));
                const std::string name(PathParam(p, "model"));
                auto version = ctx->Push(req.actor, name, push->artifact, push->metadata_json,
                                         push->allow_signature_change, push->reason, push->config);
                if (!version.ok()) return reply(ChangeErrorResponse(version.status()));
                reply(VersionResponse(name, *version));
              }));
  router->Add("POST", "/v2/registry/models/{model}/shadow", auth::Scope::kAdmin,
              ChangeRoute(ctx, [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
                auto shadow = ParseShadowRequest(req.body);
                if (!shadow.ok()) return reply(ErrorResponse(shadow.status()));
                const std::string name(PathParam(p, "model"));
                auto done = ctx->SetShadow(req.actor, name, shadow->version, shadow->percent,
                                           shadow->reason);
                if (!done.ok()) return reply(ChangeErrorResponse(done.status()));
                rapidjson::StringBuffer buf;
                JsonWriter w(buf);
                w.StartObject();
                w.Key("model");
                WriteJsonString(&w, name);
                w.Key("version");
                WriteOptional(&w, shadow->percent > 0 ? std::optional<int64_t>(shadow->version)
                                                      : std::nullopt);
                w.Key("percent");
                w.Int(shadow->percent);
                w.Key("previous");
                WriteOptional(&w, done->previous);
                w.EndObject();
                reply(JsonResponse(200, std::string(buf.GetString(), buf.GetSize())));
              }));
  router->Add("POST", "/v2/registry/models/{model}/split", auth::Scope::kAdmin,
              ChangeRoute(ctx, [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
                auto split = ParseSplitRequest(req.body);
                if (!split.ok()) return reply(ErrorResponse(split.status()));
                const std::string name(PathParam(p, "model"));
                auto done = ctx->Split(req.actor, name, split->split, split->alias,
                                       split->sticky_key, split->reason);
                if (!done.ok()) return reply(ChangeErrorResponse(done.status()));
                reply(MoveResponse(name, split->alias, *done));
              }));
  // Archive, restore and delete answer {"model", "version", "state"}: the
  // version's state as GET /v2/registry/models/{m} shows it afterwards.
  const auto status_route = [ctx](VersionStatus to) {
    return [ctx, to](HttpRequest& req, const PathParams& p, Reply reply) {
      auto body = ParseVersionStatusRequest(req.body, to != VersionStatus::kActive);
      if (!body.ok()) return reply(ErrorResponse(body.status()));
      const std::string name(PathParam(p, "model"));
      auto version = ParseVersionNumber(PathParam(p, "version"));
      if (!version.ok()) return reply(ErrorResponse(version.status()));
      Status s = ctx->SetVersionStatus(req.actor, name, *version, to, body->force, body->reason);
      if (!s.ok()) return reply(ChangeErrorResponse(s));
      const std::optional<ModelEntry> entry = ctx->models->Find(name);
      const VersionEntry* live = entry ? entry->FindVersion(*version) : nullptr;
      VersionRecord record;
      record.status = to;
      rapidjson::StringBuffer buf;
      JsonWriter w(buf);
      w.StartObject();
      w.Key("model");
      WriteJsonString(&w, name);
      w.Key("version");
      w.Int64(*version);
      w.Key("state");
      WriteJsonString(&w, VersionState(live, &record));
      w.EndObject();
      reply(JsonResponse(200, std::string(buf.GetString(), buf.GetSize())));
    };
  };
  router->Add("POST", "/v2/registry/models/{model}/versions/{version}/archive", auth::Scope::kAdmin,
              ChangeRoute(ctx, status_route(VersionStatus::kArchived)));
  router->Add("POST", "/v2/registry/models/{model}/versions/{version}/restore", auth::Scope::kAdmin,
              ChangeRoute(ctx, status_route(VersionStatus::kActive)));
  router->Add("DELETE", "/v2/registry/models/{model}/versions/{version}", auth::Scope::kAdmin,
              ChangeRoute(ctx, status_route(VersionStatus::kDeleted)));
  router->Add("POST", "/v2/registry/models/{model}/versions/{version}/evaluations",
              auth::Scope::kAdmin,
              [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
                const std::string name(PathParam(p, "model"));
                auto version = ParseVersionNumber(PathParam(p, "version"));
                if (!version.ok()) return reply(ErrorResponse(version.status()));
                Status s = ctx->AddEvaluation(req.actor, name, *version, req.body);
                if (!s.ok()) return reply(ChangeErrorResponse(s));
                reply(VersionResponse(name, *version));
              });
  // A version's artifact: the model itself, so an admin read.
  router->Add("GET", "/v2/registry/models/{model}/versions/{version}/artifact",
              auth::Scope::kAdmin, [ctx](HttpRequest&, const PathParams& p, Reply reply) {
                auto version = ParseVersionNumber(PathParam(p, "version"));
                if (!version.ok()) return reply(ErrorResponse(version.status()));
                auto bytes = ctx->repository->ReadArtifact(std::string(PathParam(p, "model")),
                                                           *version);
                if (!bytes.ok()) return reply(ErrorResponse(bytes.status()));
                HttpResponse r;
                r.content_type = "application/octet-stream";
                r.body = std::move(bytes).value();
                reply(std::move(r));
              });
  router->Add("POST", "/v2/registry/models/{model}/rollback", auth::Scope::kAdmin,
              ChangeRoute(ctx, [ctx](HttpRequest& req, const PathParams& p, Reply reply) {
                auto move = ParseMoveRequest(req.body, false);
                if (!move.ok()) return reply(ErrorResponse(move.status()));
                const std::string name(PathParam(p, "model"));
                auto done = ctx->Rollback(req.actor, name, move->alias, move->reason);
                if (!done.ok()) return reply(ChangeErrorResponse(done.status()));
                reply(MoveResponse(name, move->alias, *done));
              }));
}

}  // namespace berth::http
