#include "registry/model_repository.h"

#include <algorithm>
#include <charconv>
#include <system_error>

#include "core/logging.h"
#include "core/dynamic_batcher.h"
#include "core/scheduler.h"
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

ModelRepository::ModelRepository(fs::path root, std::map<std::string, BackendFactory*> factories,
                                 ModelManager* manager)
    : root_(std::move(root)), factories_(std::move(factories)), manager_(manager) {}

std::vector<std::string> ModelRepository::ModelDirectories(std::error_code* ec) const {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root_, *ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && !name.empty() && name[0] != '.') names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status ModelRepository::LoadAll() {
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) {
    return Status::NotFound("model repository '" + root_.string() + "' is not a directory");
  }
  const std::vector<std::string> names = ModelDirectories(&ec);
  if (ec) return Status::Internal("cannot list '" + root_.string() + "': " + ec.message());
  std::lock_guard lock(mu_);
  for (const auto& name : names) {
    Status s = LoadModelLocked(name);
    // At start-up a failed model is published as UNAVAILABLE, never fatal.
    if (!s.ok() && s.code() != Status::Code::kFailedPrecondition) return s;
  }
  return Status::Ok();
}

int ModelRepository::Poll() {
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
    Status s = LoadModelLocked(name);
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
  std::vector<std::string> parts;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root_ / name, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code stat_ec;
    const auto path = it->path().lexically_relative(root_ / name).string();
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
  std::lock_guard lock(mu_);
  return LoadModelLocked(name);
}

Status ModelRepository::LoadModelLocked(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    return Status::InvalidArgument("invalid model name '" + name + "'");
  }
  if (!fs::is_directory(root_ / name)) {
    return Status::NotFound("model '" + name + "' is not in the repository");
  }
  // Taken before reading the files: a change made while they are read shows
  // up as a new fingerprint at the next poll.
  fingerprints_[name] = Fingerprint(name);
  ModelEntry entry = Load(name);
  if (entry.LatestReady() == nullptr) {
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

Status ModelRepository::UnloadModel(const std::string& name) {
  std::lock_guard lock(mu_);
  if (!manager_->Find(name)) return Status::NotFound("model '" + name + "' is not loaded");
  manager_->Remove(name);
  LOG_INFO("unloaded model", {{"model", name}});
  return Status::Ok();
}

ModelEntry ModelRepository::Load(const std::string& name) {
  ModelEntry entry;
  entry.name = name;
  const fs::path dir = root_ / name;
  auto config = LoadModelConfig(dir);
  if (!config.ok()) {
    entry.reason = config.status().message();
    return entry;
  }
  auto factory = factories_.find(config->backend);
  if (factory == factories_.end()) {
    entry.reason = "unknown backend '" + config->backend + "'";
    return entry;
  }
  std::vector<int64_t> present;
  std::error_code ec;
  for (const auto& sub : fs::directory_iterator(dir, ec)) {
    int64_t v = 0;
    if (sub.is_directory() && ParseVersionDir(sub.path().filename().string(), &v)) {
      present.push_back(v);
    }
  }
  for (int64_t v : SelectVersions(config->version_policy, present)) {
    entry.versions.push_back(LoadVersion(*config, factory->second, v));
  }
  for (int64_t v : MissingSpecificVersions(config->version_policy, present)) {
    entry.versions.push_back(Unavailable(v, "version directory " + std::to_string(v) +
                                                " named by version_policy does not exist"));
  }
  std::sort(entry.versions.begin(), entry.versions.end(),
            [](const VersionEntry& a, const VersionEntry& b) { return a.version < b.version; });
  if (entry.versions.empty()) entry.reason = "no version directories (e.g. " + name + "/1/)";
  return entry;
}

VersionEntry ModelRepository::LoadVersion(const ModelConfig& config, BackendFactory* factory,
                                          int64_t version) {
  const fs::path file = root_ / config.name / std::to_string(version) /
                        std::string(factory->model_filename());
  if (!fs::is_regular_file(file)) {
    return Unavailable(version, "missing " + file.string());
  }
  auto backend = factory->Load(config, file);
  if (!backend.ok()) return Unavailable(version, backend.status().message());
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
