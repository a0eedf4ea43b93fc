// ModelManager: the live table of models and their versions' states.
//
// Loading happens elsewhere (registry/model_repository.h); the manager only
// publishes results atomically, so a reader sees either the old or the new
// set of versions of a model, never a mix. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/inference_request.h"
#include "core/model.h"
#include "core/status.h"
#include "core/thread_annotations.h"

namespace berth {

// What a request runs on: one version of one model, held alive for exactly
// the request's duration (a reload or unload never pulls it out from under
// the request).
using ModelHandle = std::shared_ptr<const Model>;

// Why the repository could not make a version READY, when that decides how
// a change that needed the version answers (see ModelRepository::Promote).
enum class LoadFailure {
  kNone,
  kLoad,          // its files are missing or do not load
  kWarmup,        // it loaded but failed its warm-up request
  kMemoryBudget,  // refused before loading: over --memory-budget
};

struct VersionEntry {
  int64_t version = 0;
  ModelState state = ModelState::kLoading;
  std::string reason;                   // why not READY; empty when READY
  std::shared_ptr<const Model> model;   // set iff state == kReady
  LoadFailure failure = LoadFailure::kNone;  // set with `reason`
};

// One version's share of a weighted split.
struct WeightedVersion {
  int64_t version = 0;
  int weight = 0;  // > 0; shares are weight / sum of weights
  bool operator==(const WeightedVersion&) const = default;
};

// NotFound for a model the table does not have, in Triton's words (which
// its clients and tools match on), then Berth's.
Status UnknownModel(std::string_view name);

// Which version of `split` serves a request: stable for a non-empty
// `routing_key` (the same key always gets the same version while the split
// stands), random otherwise. `split` must not be empty.
int64_t PickVersion(const std::vector<WeightedVersion>& split, std::string_view routing_key);

// Where Resolve reads the key that keeps a client on one version of a split:
// the request's headers (REST) or metadata (gRPC). Implemented by each front
// end over what it already holds, so resolving copies nothing.
class RoutingKeys {
 public:
  // The value the request carries under `name` (lower-case), or empty. The
  // view stays valid while the request's headers or metadata do.
  virtual std::string_view Find(std::string_view name) const = 0;

 protected:
  ~RoutingKeys() = default;
};

// The key a split reads when it names none (REST header Berth-Routing-Key,
// gRPC metadata berth-routing-key).
inline constexpr std::string_view kDefaultRoutingKey = "berth-routing-key";

// A split keyed by an input's value rather than a header: "input:user_id"
// keys on the first element of the request's input "user_id" (its bytes, so
// every door that decodes the same value keys the same way).
inline constexpr std::string_view kInputKeyPrefix = "input:";

// RoutingKeys over a decoded request: "input:NAME" reads the request's
// input NAME, anything else `headers` (may be null).
class RequestRoutingKeys final : public RoutingKeys {
 public:
  RequestRoutingKeys(const InferenceRequest& request, const RoutingKeys* headers)
      : request_(request), headers_(headers) {}
  std::string_view Find(std::string_view name) const override;

 private:
  const InferenceRequest& request_;
  const RoutingKeys* headers_;
};

// A version that gets a copy of `percent` percent of the model's traffic;
// its answers are compared with the live ones and never returned.
struct ShadowTarget {
  int64_t version = 0;
  int percent = 0;  // 1..100
  bool operator==(const ShadowTarget&) const = default;
};

// The version of `split` with the largest weight (the first of equals): what
// a split alias reports as its version. `split` must not be empty.
int64_t HeaviestVersion(const std::vector<WeightedVersion>& split);

struct ModelEntry {
  std::string name;
  std::string reason;                   // a model-level failure, e.g. a bad config
  std::vector<VersionEntry> versions;   // ascending by version
  // Alias name -> version (production, staging, ...), from the registry.
  std::map<std::string, int64_t, std::less<>> aliases;
  // Aliases that split traffic by weight (canary 90/10, A/B/N); such an
  // alias's entry in `aliases` is its heaviest version.
  std::map<std::string, std::vector<WeightedVersion>, std::less<>> splits;
  // Split alias -> the header / metadata key (lower-case) whose value picks
  // its version (a sticky key); a split absent here reads kDefaultRoutingKey.
  std::map<std::string, std::string, std::less<>> split_keys;
  std::optional<ShadowTarget> shadow;

  // The highest READY version, or nullptr.
  const VersionEntry* LatestReady() const;
  // What a request naming no version runs on: the `production` alias's
  // version if it is set, else the highest READY version. May be a version
  // that is not READY (a production alias whose version failed), or nullptr.
  const VersionEntry* Default() const;
  const VersionEntry* FindVersion(int64_t version) const;
};

// The alias a request naming no version follows, when the model has it.
inline constexpr std::string_view kProductionAlias = "production";

// Told when a model's entry in the table changes, so that what is kept per
// version elsewhere (metric series, later drift windows) can follow it.
// Called after the change is published, outside the table's lock, on the
// thread that made it; changes to one model are reported in order.
class ModelTableObserver {
 public:
  virtual ~ModelTableObserver() = default;
  // `entry` is the model's new entry, or nullptr when it left the table.
  virtual void OnModelChanged(const std::string& name, const ModelEntry* entry) = 0;
};

// A version as a request writes it: a positive decimal integer without sign or
// leading zeros ("3", not "03" or "+3"). InvalidArgument otherwise.
StatusOr<int64_t> ParseVersionNumber(std::string_view text);

class ModelManager {
 public:
  // `observer` (not owned; may be null) must outlive the manager. Set before
  // the first change.
  void SetObserver(ModelTableObserver* observer) { observer_ = observer; }

  // Publishes `entry`, replacing whatever was known under its name. The
  // versions it replaces are released outside the table's lock: destroying
  // one drains its scheduler, which must not stall every lookup.
  void Set(ModelEntry entry) LOCKS_EXCLUDED(mu_);
  void Remove(const std::string& name) LOCKS_EXCLUDED(mu_);

  // The one lookup step every door takes: what a request names (a model and
  // a selector) becomes the handle the request runs on. `selector` is a
  // version number, an alias (production, staging, ...), or empty for the
  // model's default (ModelEntry::Default). Resolve once per request and keep the handle: looking the
  // version up again may find it gone after a hot swap. NotFound for an
  // unknown model or version, Unavailable for a version that exists but is
  // not READY, InvalidArgument for a malformed name (ValidateModelName) or
  // selector (ParseVersionNumber).
  // For a split alias, `keys` (may be null: a random draw) gives the value
  // of the split's sticky key, or of kDefaultRoutingKey, which picks the
  // version (PickVersion). Read only during the call; nothing is allocated
  // for it.
  StatusOr<ModelHandle> Resolve(std::string_view name, std::string_view selector,
                                const RoutingKeys* keys = nullptr) const LOCKS_EXCLUDED(mu_);

  std::optional<ModelEntry> Find(std::string_view name) const LOCKS_EXCLUDED(mu_);
  std::vector<ModelEntry> List() const LOCKS_EXCLUDED(mu_);

  // The shadow of model `name` when it has one that is READY: its handle and
  // share. Costs one atomic load when no model has a shadow.
  struct Shadow {
    ModelHandle model;
    int percent = 0;
  };
  std::optional<Shadow> FindShadow(std::string_view name) const LOCKS_EXCLUDED(mu_);

  // Calls `f` on the model of every READY version published now, without
  // holding the table's lock (so `f` may block or use the manager).
  void ForEachReadyModel(const std::function<void(const Model&)>& f) const LOCKS_EXCLUDED(mu_);

  // Whether any model has a split keyed by an input (kInputKeyPrefix): the
  // doors that resolve before they decode must then pick again once the
  // inputs are decoded. One atomic load.
  bool SplitsByInput() const { return input_keyed_.load(std::memory_order_relaxed) > 0; }

 private:
  ModelTableObserver* observer_ = nullptr;
  // How many models in the table have a shadow; a split keyed by an input.
  std::atomic<int> shadowed_{0};
  std::atomic<int> input_keyed_{0};
  mutable std::shared_mutex mu_;
  std::map<std::string, ModelEntry, std::less<>> models_ GUARDED_BY(mu_);
};

}  // namespace berth
