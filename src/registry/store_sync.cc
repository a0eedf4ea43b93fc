#include "registry/store_sync.h"

#include <filesystem>
#include <map>
#include <system_error>
#include <utility>
#include <vector>

#include "core/logging.h"
#include "core/model_name.h"
#include "registry/artifact_digest.h"
#include "registry/config_parser.h"
#include "registry/version_files.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

bool IsDirectory(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

void RemoveAll(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// Why the store's record cannot become a version directory here, or "".
std::string Unusable(const VersionRecord& r) {
  if (r.version <= 0) return "its number is not positive";
  // A version that is a directory (the Python runtime's) lists its files;
  // another is one ONNX file.
  if (r.files.empty() && r.format != "onnx") {
    return "its format '" + PrintableExcerpt(r.format) + "' is not onnx and it lists no files";
  }
  return "";
}

// Whether what `published` serves (its versions, and under its aliases,
// splits with their sticky keys, and shadow) is not what the store records:
// a version archived or deleted elsewhere is still served here, or an alias
// moved.
bool Differs(const ModelEntry& published, const std::vector<VersionRecord>& records,
             const std::vector<AliasRecord>& aliases, const std::optional<ShadowTarget>& shadow) {
  for (const VersionRecord& r : records) {
    if (r.status == VersionStatus::kActive) continue;
    if (const VersionEntry* v = published.FindVersion(r.version);
        v != nullptr && v->state == ModelState::kReady) {
      return true;
    }
  }
  std::map<std::string, int64_t, std::less<>> versions;
  std::map<std::string, std::vector<WeightedVersion>, std::less<>> splits;
  std::map<std::string, std::string, std::less<>> keys;
  for (const AliasRecord& a : aliases) {
    versions[a.alias] = a.version;
    if (!a.split.empty()) splits[a.alias] = a.split;
    if (!a.split.empty() && !a.sticky_key.empty()) keys[a.alias] = a.sticky_key;
  }
  return versions != published.aliases || splits != published.splits ||
         keys != published.split_keys || shadow != published.shadow;
}

// Errors that fetching again will not cure: the store lacks the artifact,
// or its bytes are not what the digest says.
bool Permanent(const Status& s) {
  return s.code() == Status::Code::kNotFound || s.code() == Status::Code::kFailedPrecondition;
}

}  // namespace

StoreSync::StoreSync(RegistryStore* store, ModelRepository* repository, ModelManager* manager)
    : store_(store), repository_(repository), manager_(manager) {}

StatusOr<int> StoreSync::SyncOnce() {
  std::lock_guard lock(mu_);
  StatusOr<int> result = Pass();
  std::lock_guard health(health_mu_);
  health_.degraded = !result.ok();
  health_.error = result.ok() ? std::string() : result.status().message();
  return result;
}

StoreHealth StoreSync::Health() const {
  std::lock_guard health(health_mu_);
  return health_;
}

StatusOr<int> StoreSync::Pass() {
  ASSIGN_OR_RETURN(int64_t generation, store_->Generation());
  if (generation_ == generation) return 0;
  ASSIGN_OR_RETURN(std::vector<std::string> models, store_->Models());
  int acted = 0;
  bool complete = true;
  for (const std::string& name : models) {
    // The store is shared: a name this replica cannot hold as a directory
    // is never turned into a path.
    if (Status valid = ValidateModelName(name); !valid.ok()) {
      LOG_WARN("the registry store names a model this replica cannot hold",
               {{"error", valid.message()}});
      continue;
    }
    bool model_acted = false;
    Status s = SyncModel(name, &model_acted);
    if (model_acted) ++acted;
    if (!s.ok()) {
      complete = false;
      LOG_WARN("cannot sync a model from the registry store; retrying at the next pass",
               {{"model", name}, {"error", s.message()}});
    }
  }
  if (complete) generation_ = generation;
  return acted;
}

Status StoreSync::SyncModel(const std::string& name, bool* acted) {
  ASSIGN_OR_RETURN(std::vector<VersionRecord> versions, store_->Versions(name));
  ASSIGN_OR_RETURN(std::vector<AliasRecord> aliases, store_->Aliases(name));
  ASSIGN_OR_RETURN(std::optional<ShadowTarget> shadow, store_->Shadow(name));
  const fs::path root = repository_->root();
  const fs::path dir = root / name;
  const bool new_model = !IsDirectory(dir);
  std::vector<const VersionRecord*> missing;
  for (const VersionRecord& r : versions) {
    // A deleted version is never fetched; the reload below removes its files.
    if (r.status == VersionStatus::kDeleted) continue;
    if (skipped_.contains({name, r.version, r.digest})) continue;
    if (const std::string why = Unusable(r); !why.empty()) {
      skipped_.insert({name, r.version, r.digest});
      LOG_WARN("cannot hold a version of the registry store here",
               {{"model", name}, {"version", std::to_string(r.version)}, {"reason", why}});
      continue;
    }
    if (new_model || !IsDirectory(dir / std::to_string(r.version))) missing.push_back(&r);
  }
  const std::optional<ModelEntry> published = manager_->Find(name);
  // A model unloaded on request (not published, its directory here) stays
  // unloaded until the store gives it a version this replica lacks.
  if (missing.empty() && (!published || !Differs(*published, versions, aliases, shadow))) {
    return Status::Ok();
  }

  // Fetched and written outside the repository's lock, so that a long
  // download never holds up this replica's own pushes and moves; only the
  // renames that publish the files happen under it.
  const fs::path staged_model = root / (".sync-model-" + name);
  std::vector<std::pair<int64_t, fs::path>> staged;
  const auto clean_up = [&] {
    for (const auto& [version, path] : staged) RemoveAll(path);
    if (new_model) RemoveAll(staged_model);
  };
  if (new_model) {
    RemoveAll(staged_model);
    std::error_code ec;
    fs::create_directories(staged_model, ec);
    if (ec) return Status::Internal("cannot create a staging directory: " + ec.message());
    StatusOr<StoredConfig> config = store_->FetchConfig(name);
    if (!config.ok() && config.status().code() != Status::Code::kNotFound) {
      clean_up();
      return config.status();
    }
    // A model registered without its config serves with the defaults, as
    // a first push creates one.
    const StoredConfig file = config.ok() ? *config : StoredConfig{"config.yaml", "{}\n"};
    if (!IsConfigFileName(file.name)) {
      clean_up();
      return Status::FailedPrecondition("the store's config file name '" +
                                        PrintableExcerpt(file.name) + "' is not a config file's");
    }
    if (Status written = WriteFileDurably(staged_model / file.name, file.bytes); !written.ok()) {
      clean_up();
      return written;
    }
  }
  for (const VersionRecord* r : missing) {
    StatusOr<fs::path> path = StageVersion(*r, new_model ? staged_model : dir);
    if (!path.ok() && Permanent(path.status())) {
      skipped_.insert({name, r->version, r->digest});
      LOG_WARN("cannot fetch a version from the registry store; skipping it",
               {{"model", name}, {"version", std::to_string(r->version)},
                {"error", path.status().message()}});
      continue;
    }
    if (!path.ok()) {
      clean_up();
      return path.status();
    }
    staged.emplace_back(r->version, *path);
  }
  if (new_model && staged.empty()) {
    clean_up();
    return Status::Ok();
  }

  Status written;
  const auto publish = [&]() -> Status {
    std::error_code ec;
    if (new_model) {
      // A push on this replica may have created the model meanwhile; the
      // next pass then adds the versions to its directory instead.
      if (IsDirectory(dir)) return Status::Unavailable("the model's directory appeared meanwhile");
      for (const auto& [version, path] : staged) {
        fs::rename(path, staged_model / std::to_string(version), ec);
        if (ec) return Status::Internal("cannot publish a fetched version: " + ec.message());
      }
      RETURN_IF_ERROR(SyncDirectory(staged_model));
      fs::rename(staged_model, dir, ec);
      if (ec) return Status::Internal("cannot publish a fetched model: " + ec.message());
      return SyncDirectory(root);
    }
    for (const auto& [version, path] : staged) {
      if (IsDirectory(dir / std::to_string(version))) continue;  // written meanwhile
      fs::rename(path, dir / std::to_string(version), ec);
      if (ec) return Status::Internal("cannot publish a fetched version: " + ec.message());
    }
    return SyncDirectory(dir);
  };
  Status reloaded = repository_->SyncModel(name, [&]() {
    written = publish();
    return written;
  });
  clean_up();
  if (!written.ok()) return written;
  *acted = true;
  for (const auto& [version, path] : staged) {
    LOG_INFO("version fetched from the registry store",
             {{"model", name}, {"version", std::to_string(version)}});
  }
  if (!reloaded.ok()) {
    // The files are in place; the reload's failure (logged by the
    // repository with the versions' reasons) is not cured by retrying.
    LOG_WARN("synced model did not reload", {{"model", name}, {"error", reloaded.message()}});
  }
  return Status::Ok();
}

StatusOr<fs::path> StoreSync::StageVersion(const VersionRecord& record, const fs::path& dir) {
  // Every file of the version (the record's list, names checked when it
  // was read from the store), or its one ONNX file.
  std::vector<VersionFile> files = record.files;
  if (files.empty()) files.push_back({"model.onnx", record.digest, record.size});
  const fs::path staging = dir / (".sync-" + std::to_string(record.version));
  RemoveAll(staging);
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) return Status::Internal("cannot create a staging directory: " + ec.message());
  Status s;
  for (const VersionFile& f : files) {
    StatusOr<std::string> bytes = store_->FetchArtifact(f.digest);
    if (!bytes.ok()) {
      s = bytes.status();
    } else if (const ArtifactDigest digest = Sha256Bytes(*bytes); digest.digest != f.digest) {
      s = Status::FailedPrecondition("the store's bytes of '" + PrintableExcerpt(f.name) +
                                     "' of version " + std::to_string(record.version) +
                                     " have digest " + digest.digest + ", not " + f.digest);
    }
    const fs::path path = staging / f.name;
    if (s.ok() && path.parent_path() != staging) {
      fs::create_directories(path.parent_path(), ec);
      if (ec) s = Status::Internal("cannot create a directory of the version: " + ec.message());
    }
    if (s.ok()) s = WriteFileDurably(path, *bytes);
    if (s.ok() && path.parent_path() != staging) s = SyncDirectory(path.parent_path());
    if (!s.ok()) break;
  }
  if (s.ok()) s = WriteFileDurably(staging / kVersionRecordFile, VersionRecordJson(record));
  if (s.ok()) s = SyncDirectory(staging);
  if (!s.ok()) {
    RemoveAll(staging);
    return s;
  }
  return staging;
}

}  // namespace berth
