#include "core/model_manager.h"

#include <algorithm>
#include <charconv>
#include <mutex>
#include <random>

#include "core/model_name.h"

namespace berth {

const VersionEntry* ModelEntry::LatestReady() const {
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    if (it->state == ModelState::kReady) return &*it;
  }
  return nullptr;
}

namespace {

bool KeysByInput(const ModelEntry& entry) {
  return std::any_of(entry.split_keys.begin(), entry.split_keys.end(),
                     [](const auto& k) { return k.second.starts_with(kInputKeyPrefix); });
}

}  // namespace

std::string_view RequestRoutingKeys::Find(std::string_view name) const {
  if (!name.starts_with(kInputKeyPrefix)) {
    return headers_ != nullptr ? headers_->Find(name) : std::string_view();
  }
  name.remove_prefix(kInputKeyPrefix.size());
  for (const Tensor& input : request_.inputs) {
    if (input.name() != name || input.element_count() < 1) continue;
    if (input.datatype() == DataType::kBytes) {
      return input.strings().empty() ? std::string_view() : std::string_view(input.strings()[0]);
    }
    // The first element's bytes: the same value decoded at any door.
    const size_t size = DataTypeByteSize(input.datatype());
    if (size == 0 || input.bytes().size() < size) return {};
    return std::string_view(reinterpret_cast<const char*>(input.bytes().data()), size);
  }
  return {};
}

void ModelManager::Set(ModelEntry entry) {
  const std::string name = entry.name;
  std::optional<ModelEntry> published = observer_ ? std::optional<ModelEntry>(entry) : std::nullopt;
  {
    std::unique_lock lock(mu_);
    auto [it, inserted] = models_.try_emplace(name);
    // The old entry leaves through `entry`, destroyed after the lock.
    std::swap(it->second, entry);
    shadowed_ += (it->second.shadow ? 1 : 0) - (!inserted && entry.shadow ? 1 : 0);
    input_keyed_ += (KeysByInput(it->second) ? 1 : 0) - (!inserted && KeysByInput(entry) ? 1 : 0);
  }
  if (observer_ != nullptr) observer_->OnModelChanged(name, &*published);
}

void ModelManager::Remove(const std::string& name) {
  std::optional<ModelEntry> removed;
  {
    std::unique_lock lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return;
    removed = std::move(it->second);
    models_.erase(it);
    if (removed->shadow) --shadowed_;
    if (KeysByInput(*removed)) --input_keyed_;
  }
  removed.reset();
  if (observer_ != nullptr) observer_->OnModelChanged(name, nullptr);
}

Status UnknownModel(std::string_view name) {
  const std::string shown = PrintableExcerpt(name);
  return Status::NotFound("Request for unknown model: '" + shown + "' is not found (model '" +
                          shown + "' is not in the repository)");
}

int64_t PickVersion(const std::vector<WeightedVersion>& split, std::string_view routing_key) {
  uint64_t total = 0;
  for (const auto& w : split) total += static_cast<uint64_t>(w.weight);
  uint64_t draw = 0;
  if (!routing_key.empty()) {
    // FNV-1a, then a finalizer so that similar keys spread over the range.
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : routing_key) h = (h ^ c) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    draw = h % total;
  } else {
    thread_local std::mt19937_64 random{std::random_device{}()};
    draw = random() % total;
  }
  for (const auto& w : split) {
    if (draw < static_cast<uint64_t>(w.weight)) return w.version;
    draw -= static_cast<uint64_t>(w.weight);
  }
  return split.back().version;
}

int64_t HeaviestVersion(const std::vector<WeightedVersion>& split) {
  const WeightedVersion* heaviest = &split[0];
  for (const WeightedVersion& w : split) {
    if (w.weight > heaviest->weight) heaviest = &w;
  }
  return heaviest->version;
}

const VersionEntry* ModelEntry::FindVersion(int64_t version) const {
  for (const VersionEntry& v : versions) {
    if (v.version == version) return &v;
  }
  return nullptr;
}

const VersionEntry* ModelEntry::Default() const {
  auto production = aliases.find(kProductionAlias);
  if (production != aliases.end()) return FindVersion(production->second);
  return LatestReady();
}

StatusOr<int64_t> ParseVersionNumber(std::string_view text) {
  int64_t number = 0;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(first, last, number);
  const bool canonical = !text.empty() && text[0] >= '1' && text[0] <= '9';
  if (!canonical || ec != std::errc() || end != last || number <= 0) {
    return Status::InvalidArgument("version '" + PrintableExcerpt(text) +
                                   "' is not a version number: versions are positive integers "
                                   "written without sign or leading zeros");
  }
  return number;
}

StatusOr<ModelHandle> ModelManager::Resolve(std::string_view name, std::string_view selector,
                                            const RoutingKeys* keys) const {
  RETURN_IF_ERROR(ValidateModelName(name));
  // A selector that starts with a letter is an alias; anything else must be
  // a version number.
  const bool alias = !selector.empty() && selector[0] >= 'a' && selector[0] <= 'z';
  int64_t number = 0;
  if (!selector.empty() && !alias) {
    ASSIGN_OR_RETURN(number, ParseVersionNumber(selector));
  }
  std::shared_lock lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) {
    return UnknownModel(name);
  }
  const ModelEntry& entry = it->second;
  const VersionEntry* v = nullptr;
  // A request naming no version follows production, split or not.
  const std::string_view alias_name = selector.empty() ? kProductionAlias : selector;
  if (auto split = entry.splits.find(alias_name);
      split != entry.splits.end() && (alias || selector.empty())) {
    std::string_view routing_key;
    if (keys != nullptr) {
      auto sticky = entry.split_keys.find(alias_name);
      routing_key =
          keys->Find(sticky == entry.split_keys.end() ? kDefaultRoutingKey : sticky->second);
    }
    v = entry.FindVersion(PickVersion(split->second, routing_key));
    if (v == nullptr) return Status::Internal("a split names a version the model does not have");
  } else if (selector.empty()) {
    v = entry.Default();
    if (v == nullptr) {
      std::string why = entry.reason;
      if (why.empty() && !entry.versions.empty()) why = entry.versions.back().reason;
      return Status::Unavailable("model '" + entry.name + "' has no ready version" +
                                 (why.empty() ? "" : ": " + why));
    }
  } else if (alias) {
    auto a = entry.aliases.find(selector);
    if (a == entry.aliases.end()) {
      return Status::NotFound("Request for unknown model: '" + entry.name + "' version " +
                              PrintableExcerpt(selector) + " is not found (model '" + entry.name +
                              "' has no version or alias '" + PrintableExcerpt(selector) + "')");
    }
    number = a->second;
  }
  if (v == nullptr) v = entry.FindVersion(number);
  if (v == nullptr) {
    return Status::NotFound("Request for unknown model: '" + entry.name + "' version " +
                            std::to_string(number) + " is not found (model '" + entry.name +
                            "' has no version '" + std::to_string(number) + "')");
  }
  if (v->state == ModelState::kReady) return v->model;
  return Status::Unavailable("version " + std::to_string(v->version) + " of model '" + entry.name +
                             "' is " + ModelStateName(v->state) +
                             (v->reason.empty() ? "" : ": " + v->reason));
}

std::optional<ModelManager::Shadow> ModelManager::FindShadow(std::string_view name) const {
  if (shadowed_.load(std::memory_order_relaxed) == 0) return std::nullopt;
  std::shared_lock lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end() || !it->second.shadow) return std::nullopt;
  const VersionEntry* v = it->second.FindVersion(it->second.shadow->version);
  if (v == nullptr || v->state != ModelState::kReady) return std::nullopt;
  return Shadow{v->model, it->second.shadow->percent};
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
