#include "registry/model_repository.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <sstream>
#include <system_error>

#include "core/logging.h"
#include "core/model_name.h"
#include "core/dynamic_batcher.h"
#include "core/scheduler.h"
#include "core/warmup.h"
#include "registry/artifact_digest.h"
#include "registry/config_parser.h"
#include "registry/repository_files.h"
#include "registry/version_metadata.h"
#include "registry/version_policy.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

VersionEntry Unavailable(int64_t version, std::string reason,
                         LoadFailure failure = LoadFailure::kLoad) {
  VersionEntry v;
  v.version = version;
  v.state = ModelState::kUnavailable;
  v.reason = std::move(reason);
  v.failure = failure;
  return v;
}

// What the reason of a version refused for `failure` starts with.
constexpr std::string_view kWarmupFailed = "failed its warm-up request: ";

// The status a change that needed `target` (not READY) answers with.
Status CannotServe(const std::string& name, int64_t version, const VersionEntry* target,
                   const std::string& unchanged) {
  const std::string which = "version " + std::to_string(version) + " of model '" + name + "'";
  if (target == nullptr) {
    return Status::FailedPrecondition(which + " cannot serve (it is not in the repository); " +
                                      unchanged);
  }
  switch (target->failure) {
    case LoadFailure::kMemoryBudget:
      return Status::ResourceExhausted(target->reason + "; " + unchanged);
    case LoadFailure::kWarmup:
      return Status::FailedPrecondition(which + " " + target->reason + "; " + unchanged);
    default:
      return Status::FailedPrecondition(which + " cannot serve (" + target->reason + "); " +
                                        unchanged);
  }
}

}  // namespace

namespace {

// The repository root as an absolute path, so that Scrub() finds it in every
// message; a root that cannot be made absolute stays as given.
fs::path AbsoluteRoot(const fs::path& root) {
  std::error_code ec;
  fs::path absolute = fs::absolute(root, ec);
  return ec ? root : absolute.lexically_normal();
}

}  // namespace

ModelRepository::ModelRepository(fs::path root, std::map<std::string, BackendFactory*> factories,
                                 ModelManager* manager, RegistryStore* store)
    : root_(AbsoluteRoot(root)),
      factories_(std::move(factories)),
      manager_(manager),
      store_(store) {}

std::vector<std::string> ModelRepository::ModelDirectories(std::error_code* ec) const {
  // Never the throwing overloads here: an entry may be a dangling link, a
  // link loop or a name the file system refuses, and none of that may stop
  // the walk, let alone the process.
  std::vector<std::string> names;
  for (fs::directory_iterator it(root_, *ec), end; !*ec && it != end; it.increment(*ec)) {
    std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (!it->is_directory(type_ec) || type_ec) continue;
    if (!ValidateModelName(name).ok()) continue;
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string ModelRepository::Scrub(std::string message) const {
  const std::string prefix = root_.string() + "/";
  for (size_t at = message.find(prefix); at != std::string::npos; at = message.find(prefix, at)) {
    message.erase(at, prefix.size());
  }
  return message;
}

Status ModelRepository::LoadAll() {
  try {
    return LoadAllOrThrow();
  } catch (const std::exception& e) {
    return Status::Internal(Scrub(std::string("loading the model repository failed: ") + e.what()));
  }
}

Status ModelRepository::LoadAllOrThrow() {
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) {
    return Status::NotFound("model repository '" + root_.string() + "' is not a directory");
  }
  const std::vector<std::string> names = ModelDirectories(&ec);
  if (ec) return Status::Internal("cannot list '" + root_.string() + "': " + ec.message());
  std::lock_guard lock(mu_);
  // A new model's first push that a crash cut off: never a model, removed.
  // (Pushes hold mu_, so none is in progress here.)
  std::vector<fs::path> unfinished;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().starts_with(".push-model-")) {
      unfinished.push_back(it->path());
    }
  }
  for (const fs::path& path : unfinished) {
    std::error_code remove_ec;
    fs::remove_all(path, remove_ec);
    LOG_INFO("removed an unfinished push", {{"path", path.filename().string()}});
  }
  for (const auto& name : names) {
    Status s = LoadModelLocked(name, nullptr, nullptr);
    // At start-up a failed model is published as UNAVAILABLE, never fatal.
    if (!s.ok() && s.code() != Status::Code::kFailedPrecondition &&
        s.code() != Status::Code::kResourceExhausted) {
      return s;
    }
  }
  return Status::Ok();
}

int ModelRepository::Poll() {
  try {
    return PollOrThrow();
  } catch (const std::exception& e) {
    LOG_WARN("polling the model repository failed", {{"error", Scrub(e.what())}});
    return 0;
  }
}

int ModelRepository::PollOrThrow() {
  std::error_code ec;
  const std::vector<std::string> names = ModelDirectories(&ec);
  if (ec) {
    LOG_WARN("cannot list the model repository", {{"path", root_.string()}, {"error", ec.message()}});
    return 0;
  }
  std::lock_guard lock(mu_);
  int acted = 0;
  for (const auto& name : names) {
    auto it = fingerprints_.find(name);
    if (it != fingerprints_.end() && it->second == Fingerprint(name)) continue;
    LOG_INFO("model files changed; loading", {{"model", name}});
    Status s = LoadModelLocked(name, nullptr, nullptr);
    if (!s.ok()) LOG_WARN("reload failed", {{"model", name}, {"error", s.message()}});
    ++acted;
  }
  std::vector<std::string> gone;
  for (const auto& [name, fingerprint] : fingerprints_) {
    if (!std::binary_search(names.begin(), names.end(), name)) gone.push_back(name);
  }
  for (const auto& name : gone) {
    fingerprints_.erase(name);
    if (manager_->Find(name)) {
      manager_->Remove(name);
      LOG_INFO("model directory removed; unloaded", {{"model", name}});
    }
    ++acted;
  }
  return acted;
}

std::string ModelRepository::Fingerprint(const std::string& name) const {
  return FingerprintOf(root_ / name, true);
}

std::string ModelRepository::VersionFingerprint(const std::string& name, int64_t version) const {
  // The version's own files and the model's top-level files (its config):
  // other versions coming and going leave it alone.
  std::string fingerprint = FingerprintOf(root_ / name, false) + "--\n" +
                            FingerprintOf(root_ / name / std::to_string(version), true);
  if (auto it = config_overrides_.find(name); it != config_overrides_.end()) {
    fingerprint += "--config\n" + it->second.json;
  }
  return fingerprint;
}

StatusOr<ModelConfig> ModelRepository::ConfigOf(const std::string& name) const {
  if (auto it = config_overrides_.find(name); it != config_overrides_.end()) {
    return it->second.config;
  }
  return LoadModelConfig(root_ / name);
}

std::string ModelRepository::FingerprintOf(const fs::path& dir, bool recursive) const {
  std::vector<std::string> parts;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code stat_ec;
    if (!recursive) {
      it.disable_recursion_pending();
      if (!it->is_regular_file(stat_ec)) continue;
    }
    const auto path = it->path().lexically_relative(dir).string();
    const auto size = it->is_regular_file(stat_ec) ? it->file_size(stat_ec) : 0;
    const auto mtime = it->last_write_time(stat_ec).time_since_epoch().count();
    parts.push_back(path + ":" + std::to_string(size) + ":" + std::to_string(mtime));
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& p : parts) out += p + "\n";
  return out;
}

Status ModelRepository::LoadModel(const std::string& name) {
  RETURN_IF_ERROR(ValidateModelName(name));
  std::lock_guard lock(mu_);
  // A load without `config` goes back to the directory's config file; if it
  // is refused, the override stays with the versions it serves.
  std::optional<ConfigOverride> previous;
  if (auto it = config_overrides_.find(name); it != config_overrides_.end()) {
    previous = std::move(it->second);
    config_overrides_.erase(it);
  }
  try {
    if (Status s = LoadModelLocked(name, nullptr, nullptr); !s.ok()) {
      if (previous) config_overrides_[name] = std::move(*previous);
      return s;
    }
    // Published all the same (UNAVAILABLE with the reason, as at start-up),
    // but a load that left nothing to serve is the caller's error to see.
    auto loaded = manager_->Find(name);
    if (loaded && loaded->LatestReady() == nullptr) {
      std::string why = loaded->reason;
      if (why.empty() && !loaded->versions.empty()) why = loaded->versions.back().reason;
      return Status::FailedPrecondition("model '" + name + "' has no version that loads" +
                                        (why.empty() ? "" : ": " + why));
    }
    return Status::Ok();
  } catch (const std::exception& e) {
    return Status::Internal(Scrub("failed to load '" + name + "': " + e.what()));
  }
}

std::string VersionRecordJson(const VersionRecord& record) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (auto [key, value] :
       {std::pair{"source", &record.source}, std::pair{"digest", &record.digest},
        std::pair{"created_by", &record.created_by}}) {
    w.Key(key);
    w.String(value->data(), static_cast<rapidjson::SizeType>(value->size()));
  }
  if (!record.reason.empty()) {
    w.Key("reason");
    w.String(record.reason.data(), static_cast<rapidjson::SizeType>(record.reason.size()));
  }
  // Metadata is a JSON object already (checked where it entered).
  std::string_view metadata = record.metadata_json;
  if (metadata.empty()) metadata = "{}";
  w.Key("metadata");
  w.RawValue(metadata.data(), metadata.size(), rapidjson::kObjectType);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Status ModelRepository::SyncModel(const std::string& name, const std::function<Status()>& write) {
  RETURN_IF_ERROR(ValidateModelName(name));
  std::lock_guard lock(mu_);
  try {
    if (write) RETURN_IF_ERROR(write());
    return LoadModelLocked(name, nullptr, nullptr);
  } catch (const std::exception& e) {
    return Status::Internal(Scrub("failed to sync '" + name + "': " + e.what()));
  }
}

Status ModelRepository::LoadModelLocked(const std::string& name, const AliasChange* change,
                                        std::optional<int64_t>* previous) {
  std::error_code ec;
  const bool is_dir = fs::is_directory(root_ / name, ec);
  if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory) {
    return Status::NotFound("model '" + name + "' cannot be read from the repository: " +
                            ec.message());
  }
  if (!is_dir) return UnknownModel(name);
  const bool status_change = change != nullptr && change->status.has_value();
  if (status_change && *change->status == VersionStatus::kActive) {
    // A restore cannot take anything out of service: recorded first, then
    // the reload below sees the version as a candidate again.
    RETURN_IF_ERROR(store_->SetVersionStatus(name, change->version, VersionStatus::kActive,
                                             change->actor, change->reason));
  }
  Aliases aliases;
  if (store_ != nullptr) {
    ASSIGN_OR_RETURN(std::vector<AliasRecord> stored, store_->Aliases(name));
    for (const AliasRecord& a : stored) {
      aliases.versions[a.alias] = a.version;
      if (!a.split.empty()) aliases.splits[a.alias] = a.split;
      if (!a.split.empty() && !a.sticky_key.empty()) aliases.split_keys[a.alias] = a.sticky_key;
    }
    ASSIGN_OR_RETURN(aliases.shadow, store_->Shadow(name));
    ASSIGN_OR_RETURN(std::vector<VersionRecord> records, store_->Versions(name));
    for (const VersionRecord& r : records) {
      if (r.status != VersionStatus::kActive) aliases.retired.insert(r.version);
    }
    SweepLocked(name, records);
  }
  // The versions `change` needs READY before it may be recorded.
  std::vector<int64_t> targets;
  bool was_serving = false;
  if (status_change && *change->status != VersionStatus::kActive) {
    // The store refuses a version in use as it records the change; said here
    // first, so that nothing is loaded in vain.
    std::string user;
    for (const auto& [alias, v] : aliases.versions) {
      if (v == change->version) user = "alias '" + alias + "' uses it";
    }
    for (const auto& [alias, split] : aliases.splits) {
      for (const WeightedVersion& w : split) {
        if (w.version == change->version) user = "alias '" + alias + "' splits traffic to it";
      }
    }
    if (aliases.shadow && aliases.shadow->version == change->version) {
      user = "it is the model's shadow; turn the shadow off first";
    }
    if (!user.empty()) {
      return Status::Aborted("cannot " + change->action + " version " +
                             std::to_string(change->version) + " of model '" + name + "': " + user);
    }
    aliases.retired.insert(change->version);
    if (auto current = manager_->Find(name)) {
      const VersionEntry* v = current->FindVersion(change->version);
      was_serving = v != nullptr && v->state == ModelState::kReady;
    }
  } else if (change != nullptr && change->shadow) {
    aliases.shadow.reset();
    if (change->shadow_percent > 0) {
      targets.push_back(change->version);
      aliases.shadow = ShadowTarget{change->version, change->shadow_percent};
    }
  } else if (change != nullptr) {
    aliases.split_keys.erase(change->alias);
    if (change->split.empty()) {
      targets.push_back(change->version);
      aliases.splits.erase(change->alias);
    } else {
      for (const WeightedVersion& w : change->split) targets.push_back(w.version);
      aliases.splits[change->alias] = change->split;
      if (!change->sticky_key.empty()) aliases.split_keys[change->alias] = change->sticky_key;
    }
    aliases.versions[change->alias] = change->version;
  }
  for (int64_t v : targets) {
    if (aliases.retired.contains(v)) {
      // The store refuses it too; said here before anything is loaded.
      return Status::Aborted("version " + std::to_string(v) + " of model '" + name +
                             "' is archived or deleted; restore an archived version first");
    }
    std::error_code version_ec;
    if (!fs::is_directory(root_ / name / std::to_string(v), version_ec)) {
      return Status::NotFound("model '" + name + "' has no version " + std::to_string(v) +
                              " in the repository");
    }
  }
  // Taken before reading the files: a change made while they are read shows
  // up as a new fingerprint at the next poll.
  fingerprints_[name] = Fingerprint(name);
  ModelEntry entry = Load(name, aliases);
  if (store_ != nullptr) RegisterReadyVersions(entry);
  if (change != nullptr) {
    // The alias moves only to versions that have loaded, and only once the
    // store has recorded the move: a crash in between leaves the old alias.
    for (int64_t v : targets) {
      const VersionEntry* target = entry.FindVersion(v);
      if (target == nullptr || target->state != ModelState::kReady) {
        const std::string what =
            change->shadow ? std::string("the shadow") : "alias '" + change->alias + "'";
        return CannotServe(name, v, target, what + " is unchanged");
      }
    }
    if (status_change) {
      if (*change->status != VersionStatus::kActive) {
        if (was_serving && entry.LatestReady() == nullptr && !change->force) {
          return Status::Aborted(
              "version " + std::to_string(change->version) + " is the last version of model '" +
              name + "' that can serve; " + change->action +
              " it with force to take the model out of service");
        }
        RETURN_IF_ERROR(store_->SetVersionStatus(name, change->version, *change->status,
                                                 change->actor, change->reason));
        version_fingerprints_.erase({name, change->version});
        if (*change->status == VersionStatus::kDeleted) {
          ASSIGN_OR_RETURN(std::vector<VersionRecord> records, store_->Versions(name));
          SweepLocked(name, records);
          fingerprints_[name] = Fingerprint(name);
        }
      }
      LOG_INFO("version status changed", {{"model", name},
                                          {"version", std::to_string(change->version)},
                                          {"action", change->action},
                                          {"actor", change->actor}});
    } else if (change->shadow) {
      ASSIGN_OR_RETURN(*previous, store_->SetShadow(name, change->version, change->shadow_percent,
                                                    change->actor, change->reason));
    } else if (change->split.empty()) {
      ASSIGN_OR_RETURN(*previous, store_->SetAlias(name, change->alias, change->version,
                                                   change->action, change->actor, change->reason));
    } else {
      ASSIGN_OR_RETURN(*previous, store_->SetSplit(name, change->alias, change->split,
                                                   change->sticky_key, change->actor,
                                                   change->reason, change->action));
    }
    if (!status_change) LOG_INFO("alias moved", {{"model", name},
                             {"alias", change->alias},
                             {"version", std::to_string(change->version)},
                             {"action", change->action},
                             {"actor", change->actor}});
  }
  // A load that left no version READY because the memory budget refused one
  // says so with ResourceExhausted, as a promotion would.
  const bool over_budget =
      entry.LatestReady() == nullptr &&
      std::any_of(entry.versions.begin(), entry.versions.end(),
                  [](const VersionEntry& v) { return v.failure == LoadFailure::kMemoryBudget; });
  if (change == nullptr && entry.LatestReady() == nullptr) {
    auto current = manager_->Find(name);
    if (current && current->LatestReady() != nullptr) {
      std::string why = entry.reason;
      if (why.empty() && !entry.versions.empty()) why = entry.versions.back().reason;
      const std::string serving = std::to_string(current->LatestReady()->version);
      LOG_WARN("reload produced no ready version; keeping the serving one",
               {{"model", name}, {"serving_version", serving}, {"reason", why}});
      return Status(over_budget ? Status::Code::kResourceExhausted
                                : Status::Code::kFailedPrecondition,
                    "model '" + name + "' was not reloaded, no version could be loaded (" + why +
                        "); version " + serving + " keeps serving");
    }
  }
  for (const auto& v : entry.versions) {
    if (v.state == ModelState::kReady) {
      LOG_INFO("loaded model",
               {{"model", name},
                {"version", std::to_string(v.version)},
                {"memory_bytes",
                 std::to_string(v.model->memory ? v.model->memory->bytes() : 0)}});
    } else {
      LOG_WARN("model version unavailable",
               {{"model", name}, {"version", std::to_string(v.version)}, {"reason", v.reason}});
    }
  }
  if (entry.versions.empty() && !aliases.retired.empty()) {
    // Every version is archived or deleted: the model is recorded, not served.
    manager_->Remove(name);
    LOG_INFO("no active version; model out of service", {{"model", name}});
    return Status::Ok();
  }
  if (!entry.reason.empty()) {
    LOG_WARN("model unavailable", {{"model", name}, {"reason", entry.reason}});
  }
  std::string refused;
  for (const auto& v : entry.versions) {
    if (v.failure == LoadFailure::kMemoryBudget) refused = v.reason;
  }
  manager_->Set(std::move(entry));
  // Published all the same (UNAVAILABLE with the reason, as at start-up),
  // but the caller learns that nothing could be loaded.
  if (change == nullptr && over_budget) {
    return Status::ResourceExhausted("model '" + name + "' has no version loaded: " + refused);
  }
  return Status::Ok();
}

void ModelRepository::SweepLocked(const std::string& name,
                                  const std::vector<VersionRecord>& records) {
  const fs::path dir = root_ / name;
  std::vector<fs::path> leftovers;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string entry = it->path().filename().string();
    if (entry.starts_with(".push-") || entry.starts_with(".deleted-")) {
      leftovers.push_back(it->path());
    }
  }
  for (const VersionRecord& r : records) {
    if (r.status != VersionStatus::kDeleted) continue;
    const fs::path version_dir = dir / std::to_string(r.version);
    std::error_code exists_ec;
    if (!fs::exists(version_dir, exists_ec)) continue;
    // Only the deleted artifact itself goes: a directory dropped in under a
    // deleted number is someone's file, and is never loaded anyway.
    bool same = false;
    for (const auto& [backend, factory] : factories_) {
      auto digest = Sha256File(version_dir / std::string(factory->model_filename()));
      same = same || (digest.ok() && digest->digest == r.digest);
    }
    if (!same) {
      LOG_WARN("a directory reuses the number of a deleted version; it is not loaded",
               {{"model", name}, {"version", std::to_string(r.version)}});
      continue;
    }
    // Renamed first, so that a crash midway never leaves half a version
    // under its number.
    const fs::path doomed = dir / (".deleted-" + std::to_string(r.version));
    fs::remove_all(doomed, ec);
    fs::rename(version_dir, doomed, ec);
    if (ec) {
      LOG_WARN("cannot remove a deleted version's files",
               {{"model", name}, {"version", std::to_string(r.version)}, {"error", ec.message()}});
      continue;
    }
    leftovers.push_back(doomed);
  }
  for (const fs::path& path : leftovers) {
    fs::remove_all(path, ec);
    LOG_INFO("removed what a push or a deletion left",
             {{"model", name}, {"path", path.filename().string()}});
    if (ec) {
      LOG_WARN("cannot remove a leftover directory",
               {{"model", name}, {"path", path.filename().string()}, {"error", ec.message()}});
    }
  }
  if (!leftovers.empty()) {
    if (Status synced = SyncDirectory(dir); !synced.ok()) {
      LOG_WARN("cannot sync the model's directory", {{"model", name}, {"error", synced.message()}});
    }
  }
}

Status ModelRepository::SetVersionStatus(const std::string& name, int64_t version,
                                         VersionStatus to, AliasChange change) {
  RETURN_IF_ERROR(ValidateModelName(name));
  if (version <= 0) return Status::InvalidArgument("a version is a positive integer");
  if (store_ == nullptr) {
    return Status::Unavailable(kNoRegistryStore);
  }
  change.status = to;
  change.version = version;
  change.action = to == VersionStatus::kArchived ? "archive"
                  : to == VersionStatus::kActive ? "restore"
                                                 : "delete";
  std::lock_guard lock(mu_);
  try {
    ASSIGN_OR_RETURN(std::vector<VersionRecord> records, store_->Versions(name));
    const bool registered =
        std::any_of(records.begin(), records.end(),
                    [&](const VersionRecord& r) { return r.version == version; });
    std::error_code ec;
    if (!registered) {
      // A version on disk that no policy loaded yet is registered now, so
      // that its record (and its number) outlives it.
      if (!fs::is_directory(root_ / name / std::to_string(version), ec)) {
        return Status::NotFound("model '" + name + "' has no version " + std::to_string(version));
      }
      if (to == VersionStatus::kActive) {
        return Status::Aborted("cannot restore version " + std::to_string(version) +
                               " of model '" + name + "': it is active");
      }
      ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(root_ / name));
      ASSIGN_OR_RETURN(BackendFactory* factory, FactoryFor(factories_, config, name));
      ASSIGN_OR_RETURN(VersionRecord record, RecordFromFiles(name, version, *factory, config));
      RETURN_IF_ERROR(store_->RegisterVersion(record, record.created_by));
    }
    return LoadModelLocked(name, &change, nullptr);
  } catch (const std::exception& e) {
    return Status::Internal(Scrub("failed to " + change.action + " version " +
                                  std::to_string(version) + " of '" + name + "': " + e.what()));
  }
}

Status ModelRepository::MoveAlias(const std::string& name, AliasChange* change,
                                  std::optional<int64_t>* previous) {
  RETURN_IF_ERROR(ValidateModelName(name));
  RETURN_IF_ERROR(ValidateAliasName(change->alias));
  if (store_ == nullptr) {
    return Status::Unavailable(kNoRegistryStore);
  }
  std::lock_guard lock(mu_);
  if (!manager_->Find(name)) return Status::NotFound("model '" + name + "' is not loaded");
  try {
    if (change->action == "rollback") {
      // Read under mu_, as every move is: two rollbacks at once must go back
      // two steps, and a rollback racing a promotion must undo whichever move
      // the store recorded last, not the one it saw before waiting its turn.
      ASSIGN_OR_RETURN(std::vector<AuditRecord> history, store_->History(name));
      std::optional<AliasState> target = RollbackState(history, change->alias);
      if (!target) {
        return Status::FailedPrecondition("alias '" + change->alias + "' of model '" + name +
                                          "' has no earlier version to roll back to");
      }
      change->version = target->version;
      change->split = std::move(target->split);
      change->sticky_key = std::move(target->sticky_key);
    }
    return LoadModelLocked(name, change, previous);
  } catch (const std::exception& e) {
    return Status::Internal(Scrub("failed to move alias of '" + name + "': " + e.what()));
  }
}

Status ModelRepository::Promote(const std::string& name, int64_t version, AliasChange change,
                                std::optional<int64_t>* previous) {
  change.version = version;
  change.action = "promote";
  return MoveAlias(name, &change, previous);
}

Status ModelRepository::SetShadow(const std::string& name, int64_t version, int percent,
                                  AliasChange change, std::optional<int64_t>* previous) {
  if (percent < 0 || percent > 100) {
    return Status::InvalidArgument("a shadow's percent is from 1 to 100 (0 turns it off)");
  }
  change.shadow = true;
  change.shadow_percent = percent;
  change.version = version;
  change.action = "shadow";
  return MoveAlias(name, &change, previous);
}

Status ModelRepository::Split(const std::string& name, std::vector<WeightedVersion> split,
                              AliasChange change, std::optional<int64_t>* previous) {
  if (split.size() < 2) return Status::InvalidArgument("a split needs at least two versions");
  std::sort(split.begin(), split.end(),
            [](const WeightedVersion& a, const WeightedVersion& b) { return a.version < b.version; });
  for (size_t i = 0; i < split.size(); ++i) {
    if (split[i].weight <= 0 || split[i].weight > 1000000) {
      return Status::InvalidArgument("split weights must be integers from 1 to 1000000");
    }
    if (i > 0 && split[i].version == split[i - 1].version) {
      return Status::InvalidArgument("version " + std::to_string(split[i].version) +
                                     " appears twice in the split");
    }
  }
  if (!change.sticky_key.empty()) {
    ASSIGN_OR_RETURN(change.sticky_key, ValidateStickyKey(change.sticky_key));
  }
  if (change.sticky_key.starts_with(kInputKeyPrefix)) {
    // Each loaded version of the split must have the input it keys on.
    const std::string_view input = std::string_view(change.sticky_key).substr(kInputKeyPrefix.size());
    const std::optional<ModelEntry> entry = manager_->Find(name);
    for (const WeightedVersion& w : split) {
      const VersionEntry* v = entry ? entry->FindVersion(w.version) : nullptr;
      if (v == nullptr || v->model == nullptr) continue;
      const auto& inputs = v->model->signature.inputs;
      if (std::none_of(inputs.begin(), inputs.end(),
                       [&](const TensorSpec& t) { return t.name == input; })) {
        std::string names;
        for (const TensorSpec& t : inputs) names += (names.empty() ? "" : ", ") + t.name;
        return Status::InvalidArgument("sticky key '" + change.sticky_key + "': version " +
                                       std::to_string(w.version) + " of model '" + name +
                                       "' has no input '" + std::string(input) +
                                       "' (its inputs: " + names + ")");
      }
    }
  }
  change.version = HeaviestVersion(split);
  change.split = std::move(split);
  change.action = "split";
  return MoveAlias(name, &change, previous);
}


StatusOr<int64_t> ModelRepository::Rollback(const std::string& name, AliasChange change,
                                            std::optional<int64_t>* previous) {
  change.action = "rollback";
  RETURN_IF_ERROR(MoveAlias(name, &change, previous));
  return change.version;
}

Status ModelRepository::UnloadModel(const std::string& name) {
  RETURN_IF_ERROR(ValidateModelName(name));
  std::lock_guard lock(mu_);
  if (!manager_->Find(name)) return Status::NotFound("model '" + name + "' is not loaded");
  manager_->Remove(name);
  LOG_INFO("unloaded model", {{"model", name}});
  return Status::Ok();
}

ModelEntry ModelRepository::Load(const std::string& name, const Aliases& aliases) {
  ModelEntry entry;
  entry.name = name;
  entry.aliases = aliases.versions;
  entry.splits = aliases.splits;
  entry.split_keys = aliases.split_keys;
  entry.shadow = aliases.shadow;
  const std::optional<ModelEntry> current = manager_->Find(name);
  const fs::path dir = root_ / name;
  auto config = ConfigOf(name);
  if (!config.ok()) {
    entry.reason = Scrub(config.status().message());
    return entry;
  }
  auto factory = factories_.find(config->backend);
  if (factory == factories_.end()) {
    entry.reason = "unknown backend '" + config->backend + "'";
    return entry;
  }
  std::vector<int64_t> present;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    int64_t v = 0;
    std::error_code type_ec;
    // The store's status wins over the directory: an archived version (or
    // what is left of a deleted one) is never loaded.
    if (it->is_directory(type_ec) && ParseVersionDir(it->path().filename().string(), &v) &&
        !aliases.retired.contains(v)) {
      present.push_back(v);
    }
  }
  if (ec) {
    entry.reason = "cannot list the model directory: " + ec.message();
    return entry;
  }
  // Availability first (as TF Serving's policy): a version that fails to load
  // is reported UNAVAILABLE and the policy is applied again to the versions
  // left, so a half-written newest version never hides a complete older one.
  std::vector<int64_t> failed;
  for (bool retry = true; retry;) {
    retry = false;
    std::vector<int64_t> candidates;
    for (int64_t v : present) {
      if (std::find(failed.begin(), failed.end(), v) == failed.end()) candidates.push_back(v);
    }
    for (int64_t v : SelectVersions(config->version_policy, candidates)) {
      const bool tried = std::any_of(entry.versions.begin(), entry.versions.end(),
                                     [v](const VersionEntry& e) { return e.version == v; });
      if (tried) continue;
      entry.versions.push_back(LoadVersion(*config, factory->second, v, current));
      if (entry.versions.back().state != ModelState::kReady) {
        failed.push_back(v);
        retry = true;
      }
    }
  }
  // Versions an alias or a split points at serve whatever the policy says.
  std::vector<std::pair<std::string, int64_t>> pinned(aliases.versions.begin(),
                                                      aliases.versions.end());
  for (const auto& [alias, split] : aliases.splits) {
    for (const WeightedVersion& w : split) pinned.emplace_back(alias, w.version);
  }
  if (aliases.shadow) pinned.emplace_back("shadow", aliases.shadow->version);
  for (const auto& [alias, v] : pinned) {
    if (entry.FindVersion(v) != nullptr) continue;
    if (std::find(present.begin(), present.end(), v) != present.end()) {
      entry.versions.push_back(LoadVersion(*config, factory->second, v, current));
    } else {
      entry.versions.push_back(Unavailable(v, "version " + std::to_string(v) + " (alias '" +
                                                  alias + "') is not in the repository"));
    }
  }
  for (int64_t v : MissingSpecificVersions(config->version_policy, present)) {
    if (entry.FindVersion(v) != nullptr || aliases.retired.contains(v)) continue;
    entry.versions.push_back(Unavailable(v, "version directory " + std::to_string(v) +
                                                " named by version_policy does not exist"));
  }
  std::sort(entry.versions.begin(), entry.versions.end(),
            [](const VersionEntry& a, const VersionEntry& b) { return a.version < b.version; });
  if (entry.versions.empty()) entry.reason = "no version directories (e.g. " + name + "/1/)";
  return entry;
}

VersionEntry ModelRepository::LoadVersion(const ModelConfig& config, BackendFactory* factory,
                                          int64_t version, const std::optional<ModelEntry>& current) {
  // A version already serving whose files and config have not changed is
  // kept as it is: a reload or a promotion loads only what is new, and the
  // version's requests, batcher and warm session carry on undisturbed.
  const std::string fingerprint = VersionFingerprint(config.name, version);
  const auto key = std::make_pair(config.name, version);
  if (current) {
    const VersionEntry* serving = current->FindVersion(version);
    auto known = version_fingerprints_.find(key);
    if (serving != nullptr && serving->state == ModelState::kReady &&
        known != version_fingerprints_.end() && known->second == fingerprint) {
      return *serving;
    }
  }
  version_fingerprints_.erase(key);
  VersionEntry loaded = LoadVersionFiles(config, factory, version);
  if (loaded.state == ModelState::kReady) version_fingerprints_[key] = fingerprint;
  return loaded;
}

VersionEntry ModelRepository::LoadVersionFiles(const ModelConfig& config, BackendFactory* factory,
                                               int64_t version, const fs::path& dir) {
  const fs::path relative =
      fs::path(config.name) / std::to_string(version) / factory->ModelFileFor(config);
  const fs::path file = dir.empty() ? root_ / relative : dir / factory->ModelFileFor(config);
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return Unavailable(version, "cannot read " + relative.string() + ": " + ec.message());
    }
    return Unavailable(version, "missing " + relative.string());
  }
  if (signed_models_ != nullptr) {
    // Before anything of the version is read: an unsigned or tampered
    // version never reaches the engine.
    Status verified = signed_models_->Verify(file.parent_path());
    if (!verified.ok()) return Unavailable(version, verified.message());
  }
  // The budget is checked against the artifact's size before anything is
  // read; the reservation then travels with the Model and is returned when
  // the version is destroyed.
  const std::string what = "version " + std::to_string(version) + " of model '" + config.name + "'";
  uint64_t artifact_bytes = fs::file_size(file, ec);
  if (ec) artifact_bytes = 0;
  const std::string budget_key = config.name + "/" + std::to_string(version) + ":" +
                                 std::to_string(artifact_bytes);
  std::unique_ptr<MemoryBudget::Reservation> memory;
  if (memory_budget_ != nullptr) {
    auto reserved = memory_budget_->Reserve(budget_key, what, artifact_bytes);
    if (!reserved.ok()) {
      return Unavailable(version, reserved.status().message(), LoadFailure::kMemoryBudget);
    }
    memory = std::move(reserved).value();
  }
  const uint64_t resident_before = ResidentBytes();
  const auto load_start = std::chrono::steady_clock::now();
  auto backend = factory->Load(config, file);
  if (!backend.ok()) return Unavailable(version, Scrub(backend.status().message()));
  auto signature = ResolveSignature(config, (*backend)->signature());
  if (!signature.ok()) return Unavailable(version, signature.status().message());

  auto model = std::make_shared<Model>();
  model->name = config.name;
  model->version = version;
  model->platform = std::string(factory->platform());
  model->config = config;
  model->signature = std::move(signature).value();
  model->backend = std::move(backend).value();
  model->scheduler = config.dynamic_batching ? CreateDynamicBatcher(model.get())
                                              : CreateDirectScheduler();
  // Before the version is published: the first client request must not pay
  // the session's first run, and a version that cannot answer never serves.
  if (Status warm = WarmUp(*model); !warm.ok()) {
    return Unavailable(version, std::string(kWarmupFailed) + warm.message(), LoadFailure::kWarmup);
  }
  model->load_duration = std::chrono::steady_clock::now() - load_start;
  if (memory != nullptr) {
    const uint64_t resident_after = ResidentBytes();
    const uint64_t growth = resident_after > resident_before ? resident_after - resident_before : 0;
    memory_budget_->RecordMeasured(budget_key, artifact_bytes, growth, memory.get());
    model->memory = std::move(memory);
  }
  VersionEntry v;
  v.version = version;
  v.state = ModelState::kReady;
  v.model = std::move(model);
  return v;
}

}  // namespace berth
