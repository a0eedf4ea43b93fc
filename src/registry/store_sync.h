// StoreSync: keeps one replica's model repository in line with a registry
// store that holds the artifacts (PostgreSQL; RegistryStore::HoldsArtifacts),
// so that replicas sharing a store, and no disk, serve the same versions
// under the same aliases.
//
// Each pass reads the store's change marker (Generation()); when it moved,
// every version the store has and the repository lacks is fetched, checked
// against its digest and written durably as <root>/<model>/<version>/
// (every file the version's record lists, or its one model.onnx, and
// berth-version.json; for a model new to this replica, its config file too) through a hidden staging directory, fsync and rename; then
// each model whose versions, aliases, splits or shadow differ from what the
// replica publishes is reloaded through ModelRepository::SyncModel, under the
// lock that serialises its loads, pushes and moves. A model the replica
// unloaded on request stays unloaded until the store gives it a new version.
//
// The Server runs a pass at start-up (after the repository's own models are
// loaded and registered) and then about once a second on a thread of its own.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "core/model_manager.h"
#include "core/status.h"
#include "core/thread_annotations.h"
#include "registry/model_repository.h"
#include "registry/registry_store.h"

namespace berth {

// Whether the last pass could read the store. A replica whose store is
// unreachable keeps serving what it holds; readiness detail and /metrics
// report it degraded until a pass reads the store again.
struct StoreHealth {
  bool degraded = false;
  std::string error;  // why the last pass failed; empty when not degraded
};

class StoreSync {
 public:
  // None is owned; `repository` publishes to `manager` and records in
  // `store`, which must hold artifacts.
  StoreSync(RegistryStore* store, ModelRepository* repository, ModelManager* manager);

  // One pass (a no-op when the store's generation has not moved since the
  // last pass that completed). Returns the number of models it wrote or
  // reloaded. Fails only when the store cannot be read at all; a model that
  // fails is logged and retried at the next pass while the others go on. A
  // version whose artifact the store lacks or whose bytes do not match its
  // digest is logged once and skipped. Passes are serialised.
  // Records the outcome in Health().
  StatusOr<int> SyncOnce() LOCKS_EXCLUDED(mu_);

  // The outcome of the last pass. Never waits for a pass in progress (one
  // may be stuck on an unreachable store): health routes call it.
  StoreHealth Health() const LOCKS_EXCLUDED(health_mu_);

 private:
  StatusOr<int> Pass() EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Brings one model in line; `acted` is set when it wrote or reloaded.
  Status SyncModel(const std::string& name, bool* acted) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fetches version `record` and writes it into `dir`/.sync-<N>/, fsynced;
  // returns that staging directory.
  StatusOr<std::filesystem::path> StageVersion(const VersionRecord& record,
                                               const std::filesystem::path& dir)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RegistryStore* const store_;
  ModelRepository* const repository_;
  ModelManager* const manager_;
  std::mutex mu_;
  // The generation the last complete pass saw.
  std::optional<int64_t> generation_ GUARDED_BY(mu_);
  // (model, version, digest) that cannot be fetched: logged once, skipped.
  std::set<std::tuple<std::string, int64_t, std::string>> skipped_ GUARDED_BY(mu_);
  mutable std::mutex health_mu_;
  StoreHealth health_ GUARDED_BY(health_mu_);
};

}  // namespace berth
