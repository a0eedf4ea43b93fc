// ModelRepository: a directory of models, loaded into a ModelManager.
//
//   <root>/<model>/config.yaml|config.json
//   <root>/<model>/<version>/model.onnx        (version: a positive integer)
//
// A model that fails to load is published as UNAVAILABLE with the reason; it
// never stops the others from loading.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/memory_budget.h"
#include "core/model_manager.h"
#include "core/status.h"
#include "core/thread_annotations.h"
#include "registry/artifact_digest.h"
#include "registry/registry_store.h"
#include "registry/signed_models.h"

namespace berth {

// Who moves an alias and why: the audit record's fields.
struct AliasChange {
  std::string alias = std::string(kProductionAlias);
  std::string actor;
  std::string reason;
  // Set by Promote / Rollback / Split.
  int64_t version = 0;  // a split's heaviest version
  std::vector<WeightedVersion> split;
  std::string sticky_key;  // a split's routing-key header, lower-case; empty: the default
  std::string action;
  // Set by SetShadow: the change is to the model's shadow (percent 0: off),
  // not to an alias.
  bool shadow = false;
  int shadow_percent = 0;
  // Set by SetVersionStatus: the change is to `version`'s status (archive,
  // restore, delete), not to an alias; `force` allows taking the model's
  // last serving version away.
  std::optional<VersionStatus> status;
  bool force = false;
};

// What a version directory records that the directory alone cannot say
// (source, digest, creator, metadata): written by a push and by a store sync
// (registry/store_sync.h), read when the version is registered.
inline constexpr const char* kVersionRecordFile = "berth-version.json";
// A version directory's metadata as a team writes it (registry/version_metadata.h),
// read when there is no kVersionRecordFile.
inline constexpr const char* kMetadataFile = "metadata.json";
std::string VersionRecordJson(const VersionRecord& record);

class ModelRepository {
 public:
  // `factories` maps a config's `backend:` value to its factory (not owned).
  // `store` (not owned; may be null: no aliases, no history) records the
  // versions that load and the aliases.
  ModelRepository(std::filesystem::path root, std::map<std::string, BackendFactory*> factories,
                  ModelManager* manager, RegistryStore* store = nullptr);

  // Loads every model directory under the root. Fails only if the root itself
  // cannot be read.
  Status LoadAll();

  // Loads (or reloads) one model directory and publishes the result. A
  // reload that yields no READY version while the model has one leaves the
  // serving versions in place and returns FailedPrecondition with the reason:
  // a broken upload never takes a working model down. A model loaded anew
  // with no READY version is published UNAVAILABLE (with the reason) and
  // FailedPrecondition is returned all the same.
  Status LoadModel(const std::string& name) LOCKS_EXCLUDED(mu_);

  // Triton's repository load parameters (registry/model_load_override.cc).
  struct LoadOverride {
    // `config`: Triton's model configuration in JSON, used instead of the
    // model directory's config file for this load and later reloads (polls,
    // promotions) until a load without it; not written to the directory.
    std::optional<std::string> config_json;
    // `file:<version>/<path>`: the files of whole version directories, by
    // "<version>/<path>"; they replace those versions' directories. They
    // need `config` (as in Triton) and name one version; a version the
    // registry store has recorded is not replaced. A new model's directory
    // is created with the configuration written as its config.pbtxt.
    std::map<std::string, std::string> files;
  };
  // LoadModel with `override`, all or nothing: the configuration is checked
  // first (InvalidArgument, naming what is wrong) and every file name
  // (ParseLoadFileName); the files are written to staging directories,
  // synced and renamed into place; then the model is loaded. If it leaves no
  // READY version, or a version sent as files does not load, the old
  // version directories and configuration come back and the model is
  // reloaded from them: the serving versions keep serving.
  Status LoadModel(const std::string& name, const LoadOverride& override) LOCKS_EXCLUDED(mu_);

  // The artifact of a registered, not deleted version (a store that keeps
  // artifacts gives it, else the version's file, checked against the
  // recorded digest): what `berth-py optimize` starts from. NotFound for a
  // version that is not registered or was deleted.
  StatusOr<std::string> ReadArtifact(const std::string& name, int64_t version) const;

  // Takes a model out of service: it leaves the manager's table (and so the
  // index and readiness) until LoadModel() brings it back. Requests already
  // holding a version finish on it. NotFound if the model is not loaded.
  Status UnloadModel(const std::string& name) LOCKS_EXCLUDED(mu_);

  // Brings the served models in line with the directory: loads new model
  // directories, reloads those whose files changed (config, version
  // directories, model files: names, sizes, modification times) and unloads
  // those removed. Returns the number of models it acted on.
  int Poll() LOCKS_EXCLUDED(mu_);

  // Points `change.alias` of a loaded model at `version`: loads the version
  // (whatever the version policy says) and publishes the alias only once the
  // version is READY and the store has recorded the move with its audit
  // record. A version that does not load or fails its warm-up request is
  // never switched to: FailedPrecondition with the reason, and the alias
  // stays; one that would not fit the memory budget: ResourceExhausted.
  // `previous` gets the version the alias pointed at before.
  Status Promote(const std::string& name, int64_t version, AliasChange change,
                 std::optional<int64_t>* previous) LOCKS_EXCLUDED(mu_);
  // Splits `change.alias` of a loaded model over `split` (at least two
  // distinct versions, weights > 0), with the same guarantees as Promote:
  // every version of the split is READY before the alias moves.
  // `change.sticky_key` (ValidateStickyKey; empty: Berth-Routing-Key) names
  // the request header whose value picks the version.
  Status Split(const std::string& name, std::vector<WeightedVersion> split, AliasChange change,
               std::optional<int64_t>* previous) LOCKS_EXCLUDED(mu_);
  // Adds a version to `name` (creating the model, with a default config, if
  // it is new) from an artifact's bytes: the next number never used by the
  // model, written to a hidden staging directory (with berth-version.json:
  // source, creator, metadata), fsynced, renamed into place, then loaded
  // and registered. A version that does not load, or whose signature
  // differs from the serving default's (unless `allow_signature_change`),
  // is removed again and the push fails with the reason: nothing is left
  // half-stored. A crash leaves the version wholly present or absent.
  // `reason` (push --reason) goes into the "register" audit record.
  // `config` (optional: empty for none) is the model's config file as text
  // (YAML or JSON, the schema of a repository's config.yaml), checked before
  // anything is written (InvalidArgument naming the problem; a `name` other
  // than `name` is refused): a first push makes it the model's config.yaml
  // (and the store's copy, with the first version); a push to an existing
  // model must carry the same text as its config file (trailing white space
  // aside), else Aborted: a push never changes a serving model's config.
  StatusOr<int64_t> Push(const std::string& name, std::string_view artifact,
                         std::string_view metadata_json, const std::string& actor,
                         bool allow_signature_change, std::string_view reason = {},
                         std::string_view config = {}) LOCKS_EXCLUDED(mu_);
  // The same from an artifact in memory or in a file (an upload streamed to
  // disk: copied into the staging directory, never held in memory, except
  // by a store that keeps artifacts' bytes itself).
  StatusOr<int64_t> Push(const std::string& name, const ArtifactSource& artifact,
                         std::string_view metadata_json, const std::string& actor,
                         bool allow_signature_change, std::string_view reason = {},
                         std::string_view config = {}) LOCKS_EXCLUDED(mu_);
  // Sends a copy of `percent` percent of the model's traffic to `version`
  // (loaded and READY first), or with percent 0 stops; recorded and audited
  // like an alias move. `previous` gets the former shadow version.
  Status SetShadow(const std::string& name, int64_t version, int percent, AliasChange change,
                   std::optional<int64_t>* previous) LOCKS_EXCLUDED(mu_);
  // Points `change.alias` back at the version it pointed at before the
  // current one (RollbackState over the store's history: a version alone or
  // a split, whichever the alias served before; read while holding
  // the lock that serialises every move, so concurrent moves compose);
  // returns it.
  StatusOr<int64_t> Rollback(const std::string& name, AliasChange change,
                             std::optional<int64_t>* previous) LOCKS_EXCLUDED(mu_);

  // Archives (kArchived), restores (kActive) or deletes (kDeleted) version
  // `version` of `name` (a version on disk that was never registered is
  // registered first), audited with `change.actor` and `change.reason`.
  // Archive and delete take the version out of service: the model's entry
  // without it is loaded before the store records the change, and if it
  // would have no READY version the change is refused (Aborted) unless
  // `change.force`, which takes the model out of the table. The store
  // refuses a version an alias, a split or the shadow uses (Aborted, naming
  // it). An archived version keeps its files and is never loaded (a Poll or
  // a restart does not bring it back) until restored; a deleted one's
  // directory is removed durably (a crash before that is finished at the
  // next load) and its number is never used again. Restore makes the
  // version a candidate for the version policy again (promote it to serve
  // it whatever the policy).
  Status SetVersionStatus(const std::string& name, int64_t version, VersionStatus to,
                          AliasChange change) LOCKS_EXCLUDED(mu_);

  // Checks every load from now on against `budget` (not owned; must outlive
  // the repository), or none when null. Set before LoadAll().
  void SetMemoryBudget(MemoryBudget* budget) { memory_budget_ = budget; }
  // With a verifier (not owned; null: none), a version loads only if its
  // directory passes SignedModelVerifier::Verify; otherwise it stays
  // UNAVAILABLE with the reason (and a push of it is refused).
  void SetSignedModelVerifier(const SignedModelVerifier* verifier) { signed_models_ = verifier; }

  // For a store sync (registry/store_sync.h): under the lock that serialises
  // loads, pushes and moves, runs `write` (which may add version directories
  // under root()/name, or create that directory whole), then reloads `name`
  // with the store's aliases and publishes it, as LoadModel does. Nothing is
  // reloaded if `write` fails.
  Status SyncModel(const std::string& name, const std::function<Status()>& write)
      LOCKS_EXCLUDED(mu_);

  const std::filesystem::path& root() const { return root_; }
  RegistryStore* store() const { return store_; }

 private:
  // The bodies of LoadAll() and Poll(); those catch what escapes them, so
  // that nothing the repository's contents do can end the process.
  Status LoadAllOrThrow();
  int PollOrThrow() LOCKS_EXCLUDED(mu_);
  struct Aliases {
    std::map<std::string, int64_t, std::less<>> versions;
    std::map<std::string, std::vector<WeightedVersion>, std::less<>> splits;
    std::map<std::string, std::string, std::less<>> split_keys;
    std::optional<ShadowTarget> shadow;
    // Archived or deleted in the store: never loaded, whatever is on disk.
    std::set<int64_t> retired;
  };
  // Loads `name` and publishes it, with its stored aliases and `change` (if
  // not null) applied; see Promote for what `change` requires.
  Status LoadModelLocked(const std::string& name, const AliasChange* change,
                         std::optional<int64_t>* previous) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies `change` under mu_. For a "rollback" it first sets
  // change->version to the rollback target, read from the store under the
  // same lock, so that concurrent moves are serialised with it.
  Status MoveAlias(const std::string& name, AliasChange* change, std::optional<int64_t>* previous)
      LOCKS_EXCLUDED(mu_);
  StatusOr<int64_t> PushLocked(const std::string& name, const ArtifactSource& artifact,
                               std::string_view metadata_json, const std::string& actor,
                               bool allow_signature_change, std::string_view reason,
                               std::string_view config) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes, trial-loads and renames into place version N+1 of `name` in
  // `dir` (the model's directory, or a staged one for a new model).
  // `config` is the model's (read from `dir`, named `name`).
  StatusOr<int64_t> PushInto(const std::string& name, const std::filesystem::path& dir,
                             const ModelConfig& config, const ArtifactSource& artifact,
                             std::string_view metadata_json, const std::string& actor,
                             bool allow_signature_change, std::string_view reason)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records in the store every READY version it does not know yet (with its
  // files, in a store that holds artifacts), and the signature of each one
  // that has none recorded.
  void RegisterReadyVersions(const ModelEntry& entry);
  // Records `v`'s signature (a READY version's) in the store; failures are logged.
  void RecordSignature(const std::string& name, const VersionEntry& v);
  // In a store that holds artifacts, a pushed version exists once the store
  // has it: registers `record` (version number and all) with the artifact
  // and `dir`'s config before the version appears on disk. A number another
  // replica took meanwhile is refused by the store; the next free one is
  // tried. Returns the version number registered.
  // `staging` holds the version's files (VersionRecord::files), if any.
  StatusOr<int64_t> RegisterPushed(VersionRecord record, const std::filesystem::path& dir,
                                   const std::filesystem::path& staging,
                                   std::string_view artifact) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records version `version` of `name`, just pushed, from its files (a
  // store that holds artifacts has it already: RegisterPushed).
  Status RecordPushed(const std::string& name, int64_t version) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The store's record of version `version` of `name` made from its files
  // (digest, size, format; berth-version.json's source, creator, metadata).
  StatusOr<VersionRecord> RecordFromFiles(const std::string& name, int64_t version,
                                          const BackendFactory& factory,
                                          const ModelConfig& config) const;
  // Removes what a crash may have left in the model's directory: staging
  // directories of pushes and deletions, and the files of versions the
  // store says were deleted (only if they are the deleted artifact: a
  // directory reusing the number is left alone, and never loaded).
  void SweepLocked(const std::string& name, const std::vector<VersionRecord>& records)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `message` without the repository root's path: clients see paths relative
  // to the repository, never where it sits on the server.
  std::string Scrub(std::string message) const;
  ModelEntry Load(const std::string& name, const Aliases& aliases) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A summary of what on disk makes up `name`; changes when any file does.
  std::string Fingerprint(const std::string& name) const;
  // Includes the model's configuration override, if it has one.
  std::string VersionFingerprint(const std::string& name, int64_t version) const
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The model's configuration: its override if it has one, else its
  // directory's config file (LoadModelConfig).
  StatusOr<ModelConfig> ConfigOf(const std::string& name) const EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // LoadModel(name, override) under mu_; `files` by version.
  struct ConfigOverride {
    ModelConfig config;
    std::string json;  // as the client sent it: part of VersionFingerprint
  };
  Status LoadOverrideLocked(
      const std::string& name, const std::optional<ConfigOverride>& config,
      const std::string& config_text,
      const std::map<int64_t, std::vector<std::pair<std::filesystem::path, const std::string*>>>&
          files) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string FingerprintOf(const std::filesystem::path& dir, bool recursive) const;
  std::vector<std::string> ModelDirectories(std::error_code* ec) const;
  // The version as `current` serves it if its files are unchanged, else
  // loaded from its files.
  VersionEntry LoadVersion(const ModelConfig& config, BackendFactory* factory, int64_t version,
                           const std::optional<ModelEntry>& current) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // From <root>/<model>/<version>/, or from `dir` if it is not empty: the
  // memory budget checked first, then loaded and warmed up (core/warmup.h).
  VersionEntry LoadVersionFiles(const ModelConfig& config, BackendFactory* factory,
                                int64_t version, const std::filesystem::path& dir = {});

  const std::filesystem::path root_;
  const std::map<std::string, BackendFactory*> factories_;
  ModelManager* const manager_;
  RegistryStore* const store_;
  MemoryBudget* memory_budget_ = nullptr;
  const SignedModelVerifier* signed_models_ = nullptr;
  // Serialises loads, unloads and polls, so that two of them never race to
  // publish the same model.
  std::mutex mu_;
  std::map<std::string, std::string> fingerprints_ GUARDED_BY(mu_);
  // What each READY version was loaded from (VersionFingerprint).
  std::map<std::pair<std::string, int64_t>, std::string> version_fingerprints_ GUARDED_BY(mu_);
  // The `config` of each model's last load that had one (LoadOverride).
  std::map<std::string, ConfigOverride> config_overrides_ GUARDED_BY(mu_);
};

}  // namespace berth
