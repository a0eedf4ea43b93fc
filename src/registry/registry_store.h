// RegistryStore: the durable record of what a model repository holds and
// what it serves: immutable versions (with their artifact's digest and
// metadata), aliases (production, staging, ...) and an audit log.
//
// The embedded store is SQLite in WAL mode at
// <model-repository>/.berth/registry.db; the PostgreSQL store for replicas
// implements the same interface and also holds the artifacts' bytes, so
// replicas share no disk (registry/store_sync.h copies them to each one).
// Every mutation is one transaction together with its audit record, so after
// a crash a change is wholly present or absent. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model_manager.h"
#include "core/status.h"

namespace berth {

// Where a version is in its life. Only an active version is loaded and may
// be promoted, split to or shadowed. An archived one keeps its files (not
// loaded) and can be restored; a deleted one is a tombstone: its files are
// gone, its record stays so that its number is never used again.
enum class VersionStatus { kActive, kArchived, kDeleted };

// "active", "archived", "deleted": the store's and the API's spelling.
std::string_view VersionStatusName(VersionStatus status);

// One file of a version that is a directory (the Python runtime's model.py
// beside its side modules): its path inside the version's directory
// (registry/version_files.h's rules) and content address.
struct VersionFile {
  std::string name;    // "model.py", "features.py", "pkg/__init__.py"
  std::string digest;  // "sha256:<64 hex>"
  int64_t size = 0;
  bool operator==(const VersionFile&) const = default;
};

struct VersionRecord {
  std::string model;
  int64_t version = 0;
  std::string digest;         // "sha256:<64 hex>" of the artifact
  int64_t size = 0;           // artifact bytes
  std::string format;         // "onnx"
  std::string source;         // where it came from: "directory", "push"
  std::string created_at;     // RFC 3339, UTC
  std::string created_by;
  std::string metadata_json = "{}";  // a JSON object
  // The inputs and outputs clients see (SignatureJson), recorded the first
  // time the version loads (RecordSignature); empty until then.
  std::string signature_json;
  VersionStatus status = VersionStatus::kActive;  // read back; RegisterVersion records kActive
  // Every file of a version whose backend loads a directory (python), by
  // name; `digest` is the model file's, one of them. Empty for a
  // single-file version (ONNX): its artifact is the version. Immutable.
  std::vector<VersionFile> files;
  // Why it was registered (push --reason): written into the "register"
  // audit record's reason after the source ("push: REASON"); not read back.
  std::string reason;
};

struct AliasRecord {
  std::string model;
  std::string alias;
  int64_t version = 0;  // for a split, its heaviest version
  std::string updated_at;
  std::vector<WeightedVersion> split;  // empty unless the alias splits traffic
  // With a split: the request header (lower-case; gRPC metadata key) whose
  // value keys the version choice. Empty: Berth-Routing-Key.
  std::string sticky_key;
};

struct AuditRecord {
  int64_t id = 0;
  std::string at;       // RFC 3339, UTC
  std::string actor;    // who: an API key's name, or the client's address
  std::string model;
  std::string action;   // "register", "promote", "split", "rollback", "shadow",
                        // "archive", "restore", "delete", "evaluate",
                        // "baseline"
  std::string alias;    // empty when the action concerns no alias
  std::optional<int64_t> from_version;
  std::optional<int64_t> to_version;
  std::string reason;
};

// An API key as the store keeps it (server/auth/api_key.h): never the
// secret, only a salted hash of it.
struct ApiKeyRecord {
  std::string id;                   // the key's public part, by which it is looked up; unique
  std::string name;                 // unique; the audit log's actor for the key's changes
  std::string salt;                 // hex
  std::string hash;                 // hex SHA-256(salt || secret)
  std::vector<std::string> scopes;  // "infer", "infer:MODEL", "read", "admin"
  double rate = 0;                  // requests per second; 0: no limit
  std::string created_at;           // RFC 3339, UTC
  std::string expires_at;           // RFC 3339, UTC; empty: never
  std::string revoked_at;           // RFC 3339, UTC; empty: not revoked
};

// An evaluation recorded against a version after it was registered
// (`berth-py evaluate --store`): the version stays immutable, its
// evaluations accumulate beside it.
struct EvaluationRecord {
  int64_t id = 0;
  std::string model;
  int64_t version = 0;
  std::string at;     // RFC 3339, UTC
  std::string actor;  // who recorded it
  std::string evaluation_json;  // {"metrics", "dataset", "rows"}: CheckEvaluation's form
};

// One row of a prediction kept to be joined with its ground truth
// (monitoring/feedback/): a request's id and row within it, the version
// that answered, when, and what it predicted.
struct PredictionRecord {
  std::string model;
  std::string id;
  int64_t row = 0;
  int64_t version = 0;
  int64_t created_ms = 0;  // Unix milliseconds
  std::string predicted;   // the class label, or the value as text (%.17g)
  std::optional<double> score;  // binary classification: P(positive class)
};

// Ground truth for one prediction row, as a feedback request names it.
struct FeedbackItem {
  std::string id;
  int64_t row = 0;
  std::string truth;  // a class label, or a value as text
};

// What became of one FeedbackItem.
enum class FeedbackOutcome {
  kJoined,     // its prediction was found and had no truth yet: recorded
  kUnknown,    // no prediction with that id and row (or, for a version's
               // route, one made by another version)
  kDuplicate,  // the prediction has its truth already (the first one stays)
  kLate,       // the prediction was kept past its retention and dropped
};

// A prediction joined with its truth.
struct JoinedPrediction {
  int64_t version = 0;
  int64_t created_ms = 0;
  int64_t labeled_ms = 0;
  std::string predicted;
  std::optional<double> score;
  std::string truth;
};

// A version's files, for a store that keeps them (HoldsArtifacts()).
struct VersionFiles {
  // The model file; its SHA-256 must be the record's digest. A default
  // (null) view: the record only.
  std::string_view artifact;
  // When the record lists files (VersionRecord::files): each one's bytes by
  // name, each SHA-256 its entry's digest; stored content-addressed as the
  // artifact is. Empty: the record only.
  std::map<std::string, std::string_view, std::less<>> contents;
  // The model's config file (named as registry/config_parser.h's
  // kConfigFileNames) and its bytes: kept only when the store has no config
  // for the model yet.
  std::string config_name;
  std::string_view config;
  // A push: the version number must be new, so AlreadyExists even when the
  // number is registered with the same digest (two replicas pushing the
  // same bytes at once make two versions, not one).
  bool new_number = false;
};

// A model's config file as a store keeps it.
struct StoredConfig {
  std::string name;  // one of kConfigFileNames (registry/config_parser.h)
  std::string bytes;
};

class RegistryStore {
 public:
  virtual ~RegistryStore() = default;

  // Records a version. Registering the same (model, version) again with the
  // same digest is a no-op (OK); with another digest it is AlreadyExists:
  // versions are immutable and their numbers never reused.
  virtual Status RegisterVersion(const VersionRecord& record, std::string_view actor) = 0;

  virtual StatusOr<std::vector<std::string>> Models() = 0;
  // Ascending by version.
  virtual StatusOr<std::vector<VersionRecord>> Versions(std::string_view model) = 0;
  virtual StatusOr<std::vector<AliasRecord>> Aliases(std::string_view model) = 0;

  // Points `alias` of `model` at `version` (which must be registered) and
  // records `action` ("promote" or "rollback") with the version it pointed
  // at before. Returns that previous version, if any. A "rollback" must go
  // to RollbackState of the alias's history as committed when it runs (a
  // version alone; SetSplit rolls back to a split):
  // if another writer (a replica) moved the alias since the caller read the
  // history, FailedPrecondition and nothing changes.
  virtual StatusOr<std::optional<int64_t>> SetAlias(std::string_view model, std::string_view alias,
                                                    int64_t version, std::string_view action,
                                                    std::string_view actor,
                                                    std::string_view reason) = 0;

  // Splits `alias` of `model` over `split` (every version registered, at
  // least two, weights > 0), recorded as `action`: "split", or "rollback"
  // back to a split (checked as SetAlias checks a rollback, with the whole
  // split). The alias's version becomes the heaviest one; a later SetAlias
  // ends the split. `sticky_key` (ValidateStickyKey's form; empty:
  // Berth-Routing-Key) is the header whose value keys the choice; stored
  // with the alias (AliasRecord::sticky_key). The audit record's reason is
  // SplitAuditReason's.
  virtual StatusOr<std::optional<int64_t>> SetSplit(std::string_view model, std::string_view alias,
                                                    const std::vector<WeightedVersion>& split,
                                                    std::string_view sticky_key,
                                                    std::string_view actor,
                                                    std::string_view reason,
                                                    std::string_view action) = 0;

  // Sends a copy of `percent` percent of `model`'s traffic to `version`
  // (registered), or with percent 0 turns the shadow off; audited as
  // "shadow". Returns the previous shadow version, if any.
  virtual StatusOr<std::optional<int64_t>> SetShadow(std::string_view model, int64_t version,
                                                     int percent, std::string_view actor,
                                                     std::string_view reason) = 0;
  virtual StatusOr<std::optional<ShadowTarget>> Shadow(std::string_view model) = 0;

  // Records a registered version's signature (SignatureJson) if it has
  // none yet: derived from the immutable artifact, so written once and never
  // changed (a second call is a no-op). Not audited. NotFound if the
  // version is not registered.
  virtual Status RecordSignature(std::string_view model, int64_t version,
                                 std::string_view signature_json) = 0;

  // Records an evaluation of a registered, not deleted version (NotFound
  // otherwise), audited as "evaluate". `evaluation_json` has passed
  // CheckEvaluation (registry/version_metadata.h).
  virtual Status AddEvaluation(std::string_view model, int64_t version,
                               std::string_view evaluation_json, std::string_view actor) = 0;
  // The model's evaluations, oldest first.
  virtual StatusOr<std::vector<EvaluationRecord>> Evaluations(std::string_view model) = 0;

  // The model's audit records, oldest first.
  virtual StatusOr<std::vector<AuditRecord>> History(std::string_view model) = 0;

  // A change marker: it grows with every committed change (each one writes
  // an audit record), so a replica polls it to learn that another one
  // pushed or moved something. Never smaller than a value returned before.
  virtual StatusOr<int64_t> Generation() = 0;

  // Whether the store keeps artifacts' bytes itself (PostgreSQL: replicas
  // share no disk). When false, artifacts live only in the model repository
  // and the three calls below do no more than RegisterVersion, or refuse.
  virtual bool HoldsArtifacts() const { return false; }
  // RegisterVersion, and in the same transaction the version's files
  // (content-addressed by the digest, stored once however many versions
  // share them). InvalidArgument if the artifact's digest is not the
  // record's.
  virtual Status RegisterVersionWithFiles(const VersionRecord& record, std::string_view actor,
                                          const VersionFiles& files) {
    return RegisterVersion(record, actor);
  }
  // The artifact with `digest`; NotFound if the store has none.
  virtual StatusOr<std::string> FetchArtifact(std::string_view digest) {
    return Status::Unimplemented("this registry store keeps no artifacts");
  }
  // The config file stored with the model's first version; NotFound if none.
  virtual StatusOr<StoredConfig> FetchConfig(std::string_view model) {
    return Status::Unimplemented("this registry store keeps no config files");
  }

  // Moves a registered version to `to`, audited (alias empty, to_version =
  // `version`) as "archive" (active -> archived), "restore" (archived ->
  // active) or "delete" (active or archived -> deleted, for good). In one
  // transaction with the checks: NotFound if the version is not registered;
  // Aborted if `to` cannot be reached from its status, or (archive, delete)
  // if an alias, a split or the shadow uses it, the message naming which.
  // SetAlias, SetSplit and SetShadow refuse a version that is not active
  // (Aborted). The store only records: the caller unloads the version and,
  // for a delete, removes its files.
  virtual Status SetVersionStatus(std::string_view model, int64_t version, VersionStatus to,
                                  std::string_view actor, std::string_view reason) = 0;

  // The drift baseline (docs/monitoring.md) `berth models baseline` set for
  // a registered version: a "berth-baseline/1" JSON object the caller has
  // validated, which takes precedence over the version's metadata.baseline.
  // Replaces any earlier one; an empty `profile_json` removes it. Audited
  // as "baseline" (to_version = `version`). NotFound if the version is not
  // registered.
  virtual Status SetBaseline(std::string_view model, int64_t version,
                             std::string_view profile_json, std::string_view actor,
                             std::string_view reason) {
    return Status::Unimplemented("this registry store keeps no baselines");
  }
  // The version's stored baseline; nullopt when it has none.
  virtual StatusOr<std::optional<std::string>> Baseline(std::string_view model, int64_t version) {
    return std::optional<std::string>();
  }
  // Predictions kept for feedback (docs/monitoring.md "Accuracy from ground
  // truth"). Not audited. SavePredictions: one transaction; a row whose
  // (model, id, row) is kept already is left as it is (an id names its
  // first prediction).
  virtual Status SavePredictions(const std::vector<PredictionRecord>& records) {
    return Status::Unimplemented("this registry store keeps no predictions");
  }
  // Records each item's truth against `model`'s prediction of its id and
  // row, in order, in one transaction (so an item repeated in one call is a
  // duplicate the second time); with `version`, only that version's
  // predictions count; a prediction made before `late_before_ms` (its
  // retention passed, whether or not ExpirePredictions ran since) is late.
  // Returns one outcome per item and, for the joined ones, the joined
  // prediction (labeled_ms = `now_ms`).
  virtual StatusOr<std::vector<std::pair<FeedbackOutcome, JoinedPrediction>>> JoinFeedback(
      std::string_view model, std::optional<int64_t> version,
      const std::vector<FeedbackItem>& items, int64_t now_ms, int64_t late_before_ms) {
    return Status::Unimplemented("this registry store keeps no predictions");
  }
  // The version's newest `limit` joined predictions not yet dropped,
  // newest truth first.
  virtual StatusOr<std::vector<JoinedPrediction>> JoinedPredictions(std::string_view model,
                                                                    int64_t version,
                                                                    int64_t limit) {
    return Status::Unimplemented("this registry store keeps no predictions");
  }
  // Retention of `model`'s predictions: those made before `drop_before_ms`
  // lose what they predicted and their truth, keeping only their key so
  // that feedback for them is told "late"; keys made before
  // `forget_before_ms` go too; and only the newest `keep` rows stay (rows
  // made at the same millisecond as the first one beyond go with it).
  virtual Status ExpirePredictions(std::string_view model, int64_t drop_before_ms,
                                   int64_t forget_before_ms, int64_t keep) {
    return Status::Unimplemented("this registry store keeps no predictions");
  }

  // API keys. CreateApiKey: AlreadyExists if the name (or the id) is taken,
  // even by a revoked key (names are never reused, so the audit log's actor
  // stays unambiguous). ApiKeys: every key, revoked and expired ones too,
  // by name. RevokeApiKey: sets revoked_at to `at`; NotFound for an unknown
  // name, FailedPrecondition if the key is revoked already.
  virtual Status CreateApiKey(const ApiKeyRecord& key) = 0;
  virtual StatusOr<std::vector<ApiKeyRecord>> ApiKeys() = 0;
  virtual Status RevokeApiKey(std::string_view name, std::string_view at) = 0;
};

// Opens (creating if needed) the SQLite store at `path`, and brings its
// schema up to date (versioned migrations, in one write transaction, so
// processes opening a new store at once apply them once).
StatusOr<std::unique_ptr<RegistryStore>> OpenSqliteRegistryStore(const std::string& path);

// Connects to the PostgreSQL server `url` names (postgresql://USER[:PASSWORD]
// @HOST[:PORT]/DB[?PARAMS], or postgres://; libpq's syntax), and brings the
// schema up to date: versioned migrations in one transaction under an
// advisory lock, so replicas starting together do not race. Gives up after
// connect_timeout (5 s unless the URL says otherwise): Unavailable, with a
// message that names the server but never the password. InvalidArgument for
// a URL of another scheme. The store holds artifacts (HoldsArtifacts()).
StatusOr<std::unique_ptr<RegistryStore>> OpenPostgresRegistryStore(const std::string& url);

// The store `registry` names, as --registry takes it: "" for SQLite at
// <model_repository>/.berth/registry.db (the directory created if need be),
// "sqlite:PATH", "postgresql://..." (or postgres://), or "none" (a null
// store). InvalidArgument for anything else, quoting only the scheme (the
// rest may hold a password).
StatusOr<std::unique_ptr<RegistryStore>> OpenRegistryStore(const std::string& registry,
                                                           const std::string& model_repository);

// What an alias serves at one point of its history: one version, or a
// weighted split (with its sticky key).
struct AliasState {
  int64_t version = 0;                 // for a split, its heaviest version
  std::vector<WeightedVersion> split;  // empty: `version` alone
  std::string sticky_key;              // a split's; empty: Berth-Routing-Key
  bool operator==(const AliasState&) const = default;
};

// A split as its audit record's reason spells it ("3=90 4=10", then
// " sticky-key=KEY" if it has one, then ": REASON" if one was given):
// the history is what a rollback replays, so the record says the whole
// split. InvalidArgument for a weight <= 0 or a sticky key that is not
// ValidateStickyKey's (lower-case) form.
StatusOr<std::string> SplitAuditReason(const std::vector<WeightedVersion>& split,
                                       std::string_view sticky_key, std::string_view reason);

// The state `alias` was in before its current one, replaying `history`:
// a promotion pushes its version, a split its split (read back from the
// reason SplitAuditReason wrote), a rollback pops; a move to the state
// already on top changes nothing. What a rollback returns to, in one step:
// after a canary split, the version alone that served before it. nullopt
// when there is nothing to go back to.
std::optional<AliasState> RollbackState(const std::vector<AuditRecord>& history,
                                        std::string_view alias);
// RollbackState's version (a split's heaviest).
std::optional<int64_t> RollbackTarget(const std::vector<AuditRecord>& history,
                                      std::string_view alias);
// What a store checks inside a rollback's transaction, `history` being the
// alias's records as committed: FailedPrecondition (RollbackRaceMessage)
// unless the rollback goes to RollbackState(history, alias), which then
// holds `to` (the split a rollback writes, or `to.version` alone).
Status CheckRollback(const std::vector<AuditRecord>& history, std::string_view model,
                     std::string_view alias, const AliasState& to);

// The current time as the store writes it: RFC 3339, UTC, to the second.
std::string NowRfc3339();

// An API key's scopes as one column holds them (space-separated), and back.
std::string JoinScopes(const std::vector<std::string>& scopes);
std::vector<std::string> SplitScopes(std::string_view text);

// What a registry call answers (Unavailable) on a server without a store.
inline constexpr const char* kNoRegistryStore =
    "this server runs without a registry store (--registry none, or the default store could "
    "not be created: see the start-up log)";

// The refusal of a version that is not registered (or was deleted).
Status UnregisteredVersion(std::string_view model, int64_t version);

// The refusal of a rollback that raced another move of the alias.
std::string RollbackRaceMessage(std::string_view model, std::string_view alias);

// Alias names: 1..64 characters of [a-z0-9_-], starting with a letter (so
// that an alias is never mistaken for a version number).
Status ValidateAliasName(std::string_view alias);

// A split's sticky key as a request header and gRPC metadata key can carry
// it: 1..64 characters of [A-Za-z0-9_.-], not starting with "grpc-" or
// ending with "-bin" (gRPC reserves those). Returned lower-cased (headers
// are case-insensitive; gRPC keys are lower-case). Or "input:NAME", keying
// on an input's value (kInputKeyPrefix): NAME is kept as spelled (1..128
// printable ASCII characters without spaces). InvalidArgument otherwise.
StatusOr<std::string> ValidateStickyKey(std::string_view header);

}  // namespace berth
