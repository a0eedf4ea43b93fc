#include "registry/model_repository.h"

#include <algorithm>
#include <charconv>
#include <system_error>

#include "core/logging.h"
#include "core/model_name.h"
#include "core/dynamic_batcher.h"
#include "core/scheduler.h"
#include "registry/artifact_digest.h"
#include "registry/config_parser.h"
#include "registry/version_policy.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

// A version directory's name is a positive decimal integer; others are ignored.
bool ParseVersionDir(const std::string& name, int64_t* version) {
  if (name.empty() || name[0] == '0') return false;
  auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), *version);
  return ec == std::errc() && end == name.data() + name.size() && *version > 0;
}

VersionEntry Unavailable(int64_t version, std::string reason) {
  VersionEntry v;
  v.version = version;
  v.state = ModelState::kUnavailable;
  v.reason = std::move(reason);
  return v;
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
  for (const auto& name : names) {
    Status s = LoadModelLocked(name, nullptr, nullptr);
    // At start-up a failed model is published as UNAVAILABLE, never fatal.
    if (!s.ok() && s.code() != Status::Code::kFailedPrecondition) return s;
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
  return FingerprintOf(root_ / name, false) + "--\n" +
         FingerprintOf(root_ / name / std::to_string(version), true);
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
  try {
    return LoadModelLocked(name, nullptr, nullptr);
  } catch (const std::exception& e) {
    return Status::Internal(Scrub("failed to load '" + name + "': " + e.what()));
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
  if (!is_dir) return Status::NotFound("model '" + name + "' is not in the repository");
  AliasMap aliases;
  if (store_ != nullptr) {
    ASSIGN_OR_RETURN(std::vector<AliasRecord> stored, store_->Aliases(name));
    for (const AliasRecord& a : stored) aliases[a.alias] = a.version;
  }
  if (change != nullptr) {
    std::error_code version_ec;
    if (!fs::is_directory(root_ / name / std::to_string(change->version), version_ec)) {
      return Status::NotFound("model '" + name + "' has no version " +
                              std::to_string(change->version) + " in the repository");
    }
    aliases[change->alias] = change->version;
  }
  // Taken before reading the files: a change made while they are read shows
  // up as a new fingerprint at the next poll.
  fingerprints_[name] = Fingerprint(name);
  ModelEntry entry = Load(name, aliases);
  if (store_ != nullptr) RegisterReadyVersions(entry);
  if (change != nullptr) {
    // The alias moves only to a version that has loaded, and only once the
    // store has recorded the move: a crash in between leaves the old alias.
    const VersionEntry* target = entry.FindVersion(change->version);
    if (target == nullptr || target->state != ModelState::kReady) {
      const std::string why = target == nullptr ? "it is not in the repository" : target->reason;
      return Status::FailedPrecondition("version " + std::to_string(change->version) +
                                        " of model '" + name + "' cannot serve (" + why +
                                        "); alias '" + change->alias + "' is unchanged");
    }
    ASSIGN_OR_RETURN(*previous, store_->SetAlias(name, change->alias, change->version,
                                                 change->action, change->actor, change->reason));
    LOG_INFO("alias moved", {{"model", name},
                             {"alias", change->alias},
                             {"version", std::to_string(change->version)},
                             {"action", change->action},
                             {"actor", change->actor}});
  } else if (entry.LatestReady() == nullptr) {
    auto current = manager_->Find(name);
    if (current && current->LatestReady() != nullptr) {
      std::string why = entry.reason;
      if (why.empty() && !entry.versions.empty()) why = entry.versions.back().reason;
      const std::string serving = std::to_string(current->LatestReady()->version);
      LOG_WARN("reload produced no ready version; keeping the serving one",
               {{"model", name}, {"serving_version", serving}, {"reason", why}});
      return Status::FailedPrecondition("model '" + name +
                                        "' was not reloaded, no version could be loaded (" + why +
                                        "); version " + serving + " keeps serving");
    }
  }
  for (const auto& v : entry.versions) {
    if (v.state == ModelState::kReady) {
      LOG_INFO("loaded model", {{"model", name}, {"version", std::to_string(v.version)}});
    } else {
      LOG_WARN("model version unavailable",
               {{"model", name}, {"version", std::to_string(v.version)}, {"reason", v.reason}});
    }
  }
  if (!entry.reason.empty()) {
    LOG_WARN("model unavailable", {{"model", name}, {"reason", entry.reason}});
  }
  manager_->Set(std::move(entry));
  return Status::Ok();
}

void ModelRepository::RegisterReadyVersions(const ModelEntry& entry) {
  auto known = store_->Versions(entry.name);
  if (!known.ok()) {
    LOG_WARN("cannot read the registry store", {{"error", known.status().message()}});
    return;
  }
  for (const VersionEntry& v : entry.versions) {
    if (v.state != ModelState::kReady) continue;
    const bool registered = std::any_of(known->begin(), known->end(), [&](const VersionRecord& r) {
      return r.version == v.version;
    });
    if (registered) continue;
    const fs::path file = root_ / entry.name / std::to_string(v.version) / "model.onnx";
    auto digest = Sha256File(file);
    if (!digest.ok()) {
      LOG_WARN("cannot register version", {{"model", entry.name},
                                            {"version", std::to_string(v.version)},
                                            {"error", Scrub(digest.status().message())}});
      continue;
    }
    VersionRecord record;
    record.model = entry.name;
    record.version = v.version;
    record.digest = digest->digest;
    record.size = digest->size;
    record.format = v.model->platform == "onnxruntime_onnx" ? "onnx" : v.model->platform;
    record.source = "directory";
    record.created_by = "repository";
    Status s = store_->RegisterVersion(record, "repository");
    if (!s.ok()) {
      LOG_WARN("cannot register version", {{"model", entry.name},
                                            {"version", std::to_string(v.version)},
                                            {"error", s.message()}});
    }
  }
}

Status ModelRepository::MoveAlias(const std::string& name, AliasChange change,
                                  std::optional<int64_t>* previous) {
  RETURN_IF_ERROR(ValidateModelName(name));
  RETURN_IF_ERROR(ValidateAliasName(change.alias));
  if (store_ == nullptr) {
    return Status::Unavailable("this server runs without a registry store (--registry none, or it could not be opened: see the start-up log)");
  }
  std::lock_guard lock(mu_);
  if (!manager_->Find(name)) return Status::NotFound("model '" + name + "' is not loaded");
  try {
    return LoadModelLocked(name, &change, previous);
  } catch (const std::exception& e) {
    return Status::Internal(Scrub("failed to move alias of '" + name + "': " + e.what()));
  }
}

Status ModelRepository::Promote(const std::string& name, int64_t version, AliasChange change,
                                std::optional<int64_t>* previous) {
  change.version = version;
  change.action = "promote";
  return MoveAlias(name, std::move(change), previous);
}

StatusOr<int64_t> ModelRepository::Rollback(const std::string& name, AliasChange change,
                                            std::optional<int64_t>* previous) {
  RETURN_IF_ERROR(ValidateModelName(name));
  RETURN_IF_ERROR(ValidateAliasName(change.alias));
  if (store_ == nullptr) {
    return Status::Unavailable("this server runs without a registry store (--registry none, or it could not be opened: see the start-up log)");
  }
  ASSIGN_OR_RETURN(std::vector<AuditRecord> history, store_->History(name));
  std::optional<int64_t> target = RollbackTarget(history, change.alias);
  if (!target) {
    return Status::FailedPrecondition("alias '" + change.alias + "' of model '" + name +
                                      "' has no earlier version to roll back to");
  }
  change.version = *target;
  change.action = "rollback";
  RETURN_IF_ERROR(MoveAlias(name, std::move(change), previous));
  return *target;
}

Status ModelRepository::UnloadModel(const std::string& name) {
  RETURN_IF_ERROR(ValidateModelName(name));
  std::lock_guard lock(mu_);
  if (!manager_->Find(name)) return Status::NotFound("model '" + name + "' is not loaded");
  manager_->Remove(name);
  LOG_INFO("unloaded model", {{"model", name}});
  return Status::Ok();
}

ModelEntry ModelRepository::Load(const std::string& name, const AliasMap& aliases) {
  ModelEntry entry;
  entry.name = name;
  entry.aliases = aliases;
  const std::optional<ModelEntry> current = manager_->Find(name);
  const fs::path dir = root_ / name;
  auto config = LoadModelConfig(dir);
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
    if (it->is_directory(type_ec) && ParseVersionDir(it->path().filename().string(), &v)) {
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
  // Versions an alias points at serve whatever the policy says.
  for (const auto& [alias, v] : aliases) {
    if (entry.FindVersion(v) != nullptr) continue;
    if (std::find(present.begin(), present.end(), v) != present.end()) {
      entry.versions.push_back(LoadVersion(*config, factory->second, v, current));
    } else {
      entry.versions.push_back(Unavailable(v, "version " + std::to_string(v) + " (alias '" +
                                                  alias + "') is not in the repository"));
    }
  }
  for (int64_t v : MissingSpecificVersions(config->version_policy, present)) {
    if (entry.FindVersion(v) != nullptr) continue;
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
                                               int64_t version) {
  const fs::path relative =
      fs::path(config.name) / std::to_string(version) / std::string(factory->model_filename());
  const fs::path file = root_ / relative;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return Unavailable(version, "cannot read " + relative.string() + ": " + ec.message());
    }
    return Unavailable(version, "missing " + relative.string());
  }
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
  VersionEntry v;
  v.version = version;
  v.state = ModelState::kReady;
  v.model = std::move(model);
  return v;
}

}  // namespace berth
