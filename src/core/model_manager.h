// ModelManager: the live table of models and their versions' states.
//
// Loading happens elsewhere (registry/model_repository.h); the manager only
// publishes results atomically, so a reader sees either the old or the new
// set of versions of a model, never a mix. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.h"
#include "core/status.h"
#include "core/thread_annotations.h"

namespace berth {

struct VersionEntry {
  int64_t version = 0;
  ModelState state = ModelState::kLoading;
  std::string reason;                   // why not READY; empty when READY
  std::shared_ptr<const Model> model;   // set iff state == kReady
};

struct ModelEntry {
  std::string name;
  std::string reason;                   // a model-level failure, e.g. a bad config
  std::vector<VersionEntry> versions;   // ascending by version

  // The highest READY version, or nullptr.
  const VersionEntry* LatestReady() const;
};

class ModelManager {
 public:
  // Publishes `entry`, replacing whatever was known under its name.
  void Set(ModelEntry entry) LOCKS_EXCLUDED(mu_);
  void Remove(const std::string& name) LOCKS_EXCLUDED(mu_);

  // Resolves a model for inference. `version` empty means the highest READY
  // version. NotFound for an unknown model or version, Unavailable for a
  // version that exists but is not READY.
  StatusOr<std::shared_ptr<const Model>> Get(std::string_view name,
                                             std::string_view version) const LOCKS_EXCLUDED(mu_);

  std::optional<ModelEntry> Find(std::string_view name) const LOCKS_EXCLUDED(mu_);
  std::vector<ModelEntry> List() const LOCKS_EXCLUDED(mu_);

  // Calls `f` on the model of every READY version published now, without
  // holding the table's lock (so `f` may block or use the manager).
  void ForEachReadyModel(const std::function<void(const Model&)>& f) const LOCKS_EXCLUDED(mu_);

 private:
  mutable std::shared_mutex mu_;
  std::map<std::string, ModelEntry, std::less<>> models_ GUARDED_BY(mu_);
};

}  // namespace berth
