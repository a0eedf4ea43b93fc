#include "core/model_manager.h"

#include <charconv>
#include <mutex>

namespace berth {

const VersionEntry* ModelEntry::LatestReady() const {
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    if (it->state == ModelState::kReady) return &*it;
  }
  return nullptr;
}

void ModelManager::Set(ModelEntry entry) {
  std::unique_lock lock(mu_);
  std::string name = entry.name;
  models_.insert_or_assign(std::move(name), std::move(entry));
}

void ModelManager::Remove(const std::string& name) {
  std::unique_lock lock(mu_);
  models_.erase(name);
}

StatusOr<std::shared_ptr<const Model>> ModelManager::Get(std::string_view name,
                                                         std::string_view version) const {
  std::shared_lock lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return Status::NotFound("model '" + std::string(name) + "' is not in the repository");
  }
  const ModelEntry& entry = it->second;
  if (version.empty()) {
    if (const VersionEntry* v = entry.LatestReady()) return v->model;
    std::string why = entry.reason;
    if (why.empty() && !entry.versions.empty()) why = entry.versions.back().reason;
    return Status::Unavailable("model '" + entry.name + "' has no ready version" +
                               (why.empty() ? "" : ": " + why));
  }
  int64_t number = 0;
  auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), number);
  if (ec != std::errc() || end != version.data() + version.size()) {
    return Status::NotFound("model '" + entry.name + "' has no version '" +
                            std::string(version) + "'");
  }
  for (const VersionEntry& v : entry.versions) {
    if (v.version != number) continue;
    if (v.state == ModelState::kReady) return v.model;
    return Status::Unavailable("version " + std::to_string(number) + " of model '" + entry.name +
                               "' is " + ModelStateName(v.state) +
                               (v.reason.empty() ? "" : ": " + v.reason));
  }
  return Status::NotFound("model '" + entry.name + "' has no version '" + std::string(version) +
                          "'");
}

std::optional<ModelEntry> ModelManager::Find(std::string_view name) const {
  std::shared_lock lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return std::nullopt;
  return it->second;
}

std::vector<ModelEntry> ModelManager::List() const {
  std::shared_lock lock(mu_);
  std::vector<ModelEntry> out;
  out.reserve(models_.size());
  for (const auto& [name, entry] : models_) out.push_back(entry);
  return out;
}

void ModelManager::ForEachReadyModel(const std::function<void(const Model&)>& f) const {
  std::vector<std::shared_ptr<const Model>> ready;
  {
    std::shared_lock lock(mu_);
    for (const auto& [name, entry] : models_) {
      for (const VersionEntry& v : entry.versions) {
        if (v.state == ModelState::kReady) ready.push_back(v.model);
      }
    }
  }
  for (const auto& model : ready) f(*model);
}

}  // namespace berth
