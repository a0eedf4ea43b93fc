// The embedded RegistryStore on SQLite (WAL). One connection, serialised by
// a mutex: registry mutations are rare and small, and SQLite's own locking
// then only has other processes to arbitrate (busy_timeout covers those).
#include <sqlite3.h>

#include <chrono>
#include <thread>
#include <ctime>
#include <mutex>

#include "core/thread_annotations.h"
#include "registry/registry_store.h"
#include "registry/version_files.h"


namespace berth {
namespace {

// Each entry brings the schema from version i to i + 1; never edit one that
// has shipped, append a new one.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE models (
  name TEXT PRIMARY KEY,
  created_at TEXT NOT NULL
);
CREATE TABLE versions (
  model TEXT NOT NULL REFERENCES models(name),
  version INTEGER NOT NULL CHECK (version > 0),
  digest TEXT NOT NULL,
  size INTEGER NOT NULL CHECK (size >= 0),
  format TEXT NOT NULL,
  source TEXT NOT NULL,
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (model, version)
);
CREATE TABLE aliases (
  model TEXT NOT NULL,
  alias TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (model, alias),
  FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  model TEXT NOT NULL,
  action TEXT NOT NULL,
  alias TEXT,
  from_version INTEGER,
  to_version INTEGER,
  reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_model ON audit(model, id);
)sql",
    R"sql(
CREATE TABLE alias_splits (
  model TEXT NOT NULL,
  alias TEXT NOT NULL,
  version INTEGER NOT NULL,
  weight INTEGER NOT NULL CHECK (weight > 0),
  PRIMARY KEY (model, alias, version),
  FOREIGN KEY (model, alias) REFERENCES aliases(model, alias) ON DELETE CASCADE,
  FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
)sql",
    R"sql(
CREATE TABLE shadows (
  model TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  percent INTEGER NOT NULL CHECK (percent BETWEEN 1 AND 100),
  updated_at TEXT NOT NULL,
  FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
)sql",
    R"sql(
ALTER TABLE versions ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
  CHECK (status IN ('active', 'archived', 'deleted'));
ALTER TABLE aliases ADD COLUMN sticky_key TEXT NOT NULL DEFAULT '';
)sql",
    R"sql(
CREATE TABLE evaluations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  model TEXT NOT NULL,
  version INTEGER NOT NULL,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  evaluation TEXT NOT NULL,
  FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE INDEX evaluations_by_model ON evaluations(model, id);
ALTER TABLE versions ADD COLUMN signature TEXT NOT NULL DEFAULT '';
)sql",
    R"sql(
CREATE TABLE baselines (
  model TEXT NOT NULL,
  version INTEGER NOT NULL,
  profile TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (model, version),
  FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
)sql",
    R"sql(
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  salt TEXT NOT NULL,
  hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  rate REAL NOT NULL DEFAULT 0 CHECK (rate >= 0),
  created_at TEXT NOT NULL,
  expires_at TEXT,
  revoked_at TEXT
);
)sql",
    R"sql(
CREATE TABLE predictions (
  model TEXT NOT NULL,
  request_id TEXT NOT NULL,
  row_index INTEGER NOT NULL,
  version INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  predicted TEXT,
  score REAL,
  truth TEXT,
  labeled_ms INTEGER,
  dropped INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (model, request_id, row_index)
);
CREATE INDEX predictions_by_age ON predictions(model, created_ms);
CREATE INDEX predictions_joined ON predictions(model, version, labeled_ms)
  WHERE truth IS NOT NULL;
)sql",
    "ALTER TABLE versions ADD COLUMN files TEXT NOT NULL DEFAULT '';",
};

VersionStatus ParseVersionStatus(std::string_view text) {
  if (text == "archived") return VersionStatus::kArchived;
  if (text == "deleted") return VersionStatus::kDeleted;
  return VersionStatus::kActive;
}

// A prepared statement, finalized on destruction.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Status status() const {
    return rc_ == SQLITE_OK || rc_ == SQLITE_ROW || rc_ == SQLITE_DONE
               ? Status::Ok()
                            : Status::Internal(std::string("registry store: ") + sqlite3_errmsg(db_));
  }
  Statement& Bind(int i, std::string_view text) {
    // An empty view may have no data(): SQLite would bind NULL for it.
    Check(sqlite3_bind_text(stmt_, i, text.empty() ? "" : text.data(),
                            static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& Bind(int i, double value) {
    Check(sqlite3_bind_double(stmt_, i, value));
    return *this;
  }
  Statement& Bind(int i, int64_t value) {
    Check(sqlite3_bind_int64(stmt_, i, value));
    return *this;
  }
  Statement& Bind(int i, std::optional<double> value) {
    Check(value ? sqlite3_bind_double(stmt_, i, *value) : sqlite3_bind_null(stmt_, i));
    return *this;
  }
  // Ready to run again, with new bindings.
  Statement& Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return *this;
  }
  Statement& Bind(int i, std::optional<int64_t> value) {
    Check(value ? sqlite3_bind_int64(stmt_, i, *value) : sqlite3_bind_null(stmt_, i));
    return *this;
  }
  Statement& BindNullable(int i, std::string_view text) {
    if (text.empty()) {
      Check(sqlite3_bind_null(stmt_, i));
      return *this;
    }
    return Bind(i, text);
  }
  // Steps once: true with a row, false when done; errors go to status().
  bool Step() {
    if (rc_ != SQLITE_OK && rc_ != SQLITE_ROW && rc_ != SQLITE_DONE) return false;
    rc_ = sqlite3_step(stmt_);
    if (rc_ == SQLITE_ROW) return true;
    if (rc_ == SQLITE_DONE) rc_ = SQLITE_OK;
    return false;
  }
  std::string Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p == nullptr ? std::string()
                        : std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::optional<double> OptionalDouble(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return Double(col);
  }
  std::optional<int64_t> OptionalInt(int col) const {
    if (sqlite3_column_type(stmt_, col) == SQLITE_NULL) return std::nullopt;
    return Int(col);
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && rc_ == SQLITE_OK) rc_ = rc;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

class SqliteRegistryStore final : public RegistryStore {
 public:
  explicit SqliteRegistryStore(sqlite3* db) : db_(db) {}
  ~SqliteRegistryStore() override { sqlite3_close(db_); }

  // All in one write transaction, begun before the applied version is read:
  // a second process opening a new store at the same time waits for it
  // (busy_timeout), then finds the migrations applied.
  Status Migrate() {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      RETURN_IF_ERROR(Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                           "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"));
      int64_t applied = 0;
      {
        Statement s(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
        if (s.Step()) applied = s.Int(0);
        RETURN_IF_ERROR(s.status());
      }
      const int64_t known = static_cast<int64_t>(std::size(kMigrations));
      if (applied > known) {
        return Status::FailedPrecondition(
            "the registry store's schema (version " + std::to_string(applied) +
            ") is newer than this berth understands (" + std::to_string(known) +
            "): upgrade berth");
      }
      for (int64_t v = applied; v < known; ++v) {
        Status s = Exec(kMigrations[v]);
        if (s.ok()) {
          Statement record(db_,
                           "INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)");
          record.Bind(1, v + 1).Bind(2, NowRfc3339());
          record.Step();
          s = record.status();
        }
        if (!s.ok()) return s.WithContext("registry store migration " + std::to_string(v + 1));
      }
      return Status::Ok();
    });
  }

  Status RegisterVersion(const VersionRecord& r, std::string_view actor) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() { return RegisterLocked(r, actor, false); });
  }

  // The artifacts stay in the model repository; only the record is kept.
  Status RegisterVersionWithFiles(const VersionRecord& r, std::string_view actor,
                                  const VersionFiles& files) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() { return RegisterLocked(r, actor, files.new_number); });
  }

  StatusOr<std::vector<std::string>> Models() override {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    Statement s(db_, "SELECT name FROM models ORDER BY name");
    while (s.Step()) out.push_back(s.Text(0));
    RETURN_IF_ERROR(s.status());
    return out;
  }

  StatusOr<std::vector<VersionRecord>> Versions(std::string_view model) override {
    std::lock_guard lock(mu_);
    std::vector<VersionRecord> out;
    Statement s(db_,
                "SELECT version, digest, size, format, source, created_at, created_by, metadata, "
                "status, signature, files FROM versions WHERE model = ? ORDER BY version");
    s.Bind(1, model);
    while (s.Step()) {
      VersionRecord r;
      r.model = std::string(model);
      r.version = s.Int(0);
      r.digest = s.Text(1);
      r.size = s.Int(2);
      r.format = s.Text(3);
      r.source = s.Text(4);
      r.created_at = s.Text(5);
      r.created_by = s.Text(6);
      r.metadata_json = s.Text(7);
      r.status = ParseVersionStatus(s.Text(8));
      r.signature_json = s.Text(9);
      ASSIGN_OR_RETURN(r.files, ParseVersionFilesJson(s.Text(10)));
      out.push_back(std::move(r));
    }
    RETURN_IF_ERROR(s.status());
    return out;
  }

  StatusOr<std::vector<AliasRecord>> Aliases(std::string_view model) override {
    std::lock_guard lock(mu_);
    std::vector<AliasRecord> out;
    {
      Statement s(db_,
                  "SELECT alias, version, updated_at, sticky_key FROM aliases WHERE model = ? "
                  "ORDER BY alias");
      s.Bind(1, model);
      while (s.Step()) {
        out.push_back({std::string(model), s.Text(0), s.Int(1), s.Text(2), {}, s.Text(3)});
      }
      RETURN_IF_ERROR(s.status());
    }
    Statement s(db_,
                "SELECT alias, version, weight FROM alias_splits WHERE model = ? "
                "ORDER BY alias, version");
    s.Bind(1, model);
    while (s.Step()) {
      const std::string alias = s.Text(0);
      for (AliasRecord& a : out) {
        if (a.alias == alias) a.split.push_back({s.Int(1), static_cast<int>(s.Int(2))});
      }
    }
    RETURN_IF_ERROR(s.status());
    return out;
  }

  StatusOr<std::optional<int64_t>> SetAlias(std::string_view model, std::string_view alias,
                                            int64_t version, std::string_view action,
                                            std::string_view actor,
                                            std::string_view reason) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> StatusOr<std::optional<int64_t>> {
      if (action == "rollback") {
        RETURN_IF_ERROR(CheckRollbackTarget(model, alias, AliasState{version, {}, {}}));
      }
      return SetAliasLocked(model, alias, version, action, actor, reason);
    });
  }

  StatusOr<std::optional<int64_t>> SetSplit(std::string_view model, std::string_view alias,
                                            const std::vector<WeightedVersion>& split,
                                            std::string_view sticky_key, std::string_view actor,
                                            std::string_view reason,
                                            std::string_view action) override {
    if (split.size() < 2) return Status::InvalidArgument("a split needs at least two versions");
    ASSIGN_OR_RETURN(const std::string why, SplitAuditReason(split, sticky_key, reason));
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> StatusOr<std::optional<int64_t>> {
      for (const WeightedVersion& w : split) RETURN_IF_ERROR(CheckActiveLocked(model, w.version));
      const AliasState to{HeaviestVersion(split), split, std::string(sticky_key)};
      if (action == "rollback") RETURN_IF_ERROR(CheckRollbackTarget(model, alias, to));
      ASSIGN_OR_RETURN(auto previous,
                       SetAliasLocked(model, alias, to.version, action, actor, why, sticky_key));
      for (const WeightedVersion& w : split) {
        Statement row(db_,
                      "INSERT INTO alias_splits(model, alias, version, weight) VALUES (?, ?, ?, ?)");
        row.Bind(1, model).Bind(2, alias).Bind(3, w.version).Bind(4, static_cast<int64_t>(w.weight));
        row.Step();
        if (!row.status().ok()) {
          return Status::InvalidArgument("cannot split over version " + std::to_string(w.version) +
                                         " of model '" + std::string(model) +
                                         "': " + row.status().message());
        }
      }
      return previous;
    });
  }

  StatusOr<std::optional<int64_t>> SetShadow(std::string_view model, int64_t version,
                                             int percent, std::string_view actor,
                                             std::string_view reason) override {
    if (percent < 0 || percent > 100) {
      return Status::InvalidArgument("a shadow's percent is from 1 to 100 (0 turns it off)");
    }
    std::lock_guard lock(mu_);
    return InTransaction(
        [&]() { return SetShadowLocked(model, version, percent, actor, reason); });
  }

  StatusOr<std::optional<ShadowTarget>> Shadow(std::string_view model) override {
    std::lock_guard lock(mu_);
    Statement s(db_, "SELECT version, percent FROM shadows WHERE model = ?");
    s.Bind(1, model);
    std::optional<ShadowTarget> out;
    if (s.Step()) out = ShadowTarget{s.Int(0), static_cast<int>(s.Int(1))};
    RETURN_IF_ERROR(s.status());
    return out;
  }

  Status SetVersionStatus(std::string_view model, int64_t version, VersionStatus to,
                          std::string_view actor, std::string_view reason) override {
    std::lock_guard lock(mu_);
    return InTransaction(
        [&]() { return SetVersionStatusLocked(model, version, to, actor, reason); });
  }

  Status RecordSignature(std::string_view model, int64_t version,
                         std::string_view signature_json) override {
    std::lock_guard lock(mu_);
    Statement s(db_,
                "UPDATE versions SET signature = ? WHERE model = ? AND version = ? AND "
                "signature = ''");
    s.Bind(1, signature_json).Bind(2, model).Bind(3, version);
    s.Step();
    RETURN_IF_ERROR(s.status());
    if (sqlite3_changes(db_) > 0) return Status::Ok();
    Statement known(db_, "SELECT 1 FROM versions WHERE model = ? AND version = ?");
    known.Bind(1, model).Bind(2, version);
    const bool found = known.Step();
    RETURN_IF_ERROR(known.status());
    return found ? Status::Ok() : UnregisteredVersion(model, version);
  }

  Status AddEvaluation(std::string_view model, int64_t version, std::string_view evaluation_json,
                       std::string_view actor) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      {
        Statement current(db_, "SELECT status FROM versions WHERE model = ? AND version = ?");
        current.Bind(1, model).Bind(2, version);
        const bool found = current.Step() && current.Text(0) != "deleted";
        RETURN_IF_ERROR(current.status());
        if (!found) return UnregisteredVersion(model, version);
      }
      Statement insert(db_,
                       "INSERT INTO evaluations(model, version, at, actor, evaluation) "
                       "VALUES (?, ?, ?, ?, ?)");
      insert.Bind(1, model).Bind(2, version).Bind(3, NowRfc3339()).Bind(4, actor);
      insert.Bind(5, evaluation_json);
      insert.Step();
      RETURN_IF_ERROR(insert.status());
      return Audit(model, "evaluate", "", std::nullopt, version, actor, "");
    });
  }

  StatusOr<std::vector<EvaluationRecord>> Evaluations(std::string_view model) override {
    std::lock_guard lock(mu_);
    std::vector<EvaluationRecord> out;
    Statement s(db_,
                "SELECT id, version, at, actor, evaluation FROM evaluations WHERE model = ? "
                "ORDER BY id");
    s.Bind(1, model);
    while (s.Step()) {
      EvaluationRecord r;
      r.id = s.Int(0);
      r.model = std::string(model);
      r.version = s.Int(1);
      r.at = s.Text(2);
      r.actor = s.Text(3);
      r.evaluation_json = s.Text(4);
      out.push_back(std::move(r));
    }
    RETURN_IF_ERROR(s.status());
    return out;
  }

  Status SetBaseline(std::string_view model, int64_t version, std::string_view profile_json,
                     std::string_view actor, std::string_view reason) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      {
        Statement known(db_, "SELECT 1 FROM versions WHERE model = ? AND version = ?");
        known.Bind(1, model).Bind(2, version);
        const bool found = known.Step();
        RETURN_IF_ERROR(known.status());
        if (!found) {
          return Status::NotFound("version " + std::to_string(version) + " of model '" +
                                  std::string(model) + "' is not registered");
        }
      }
      Statement clear(db_, "DELETE FROM baselines WHERE model = ? AND version = ?");
      clear.Bind(1, model).Bind(2, version);
      clear.Step();
      RETURN_IF_ERROR(clear.status());
      if (!profile_json.empty()) {
        Statement insert(
            db_, "INSERT INTO baselines(model, version, profile, updated_at) VALUES (?, ?, ?, ?)");
        insert.Bind(1, model).Bind(2, version).Bind(3, profile_json).Bind(4, NowRfc3339());
        insert.Step();
        RETURN_IF_ERROR(insert.status());
      }
      const std::string what = profile_json.empty() ? "cleared" : "set";
      return Audit(model, "baseline", "", std::nullopt, version, actor,
                   reason.empty() ? what : what + ": " + std::string(reason));
    });
  }

  StatusOr<std::optional<std::string>> Baseline(std::string_view model,
                                                int64_t version) override {
    std::lock_guard lock(mu_);
    Statement s(db_, "SELECT profile FROM baselines WHERE model = ? AND version = ?");
    s.Bind(1, model).Bind(2, version);
    std::optional<std::string> out;
    if (s.Step()) out = s.Text(0);
    RETURN_IF_ERROR(s.status());
    return out;
  }

  Status SavePredictions(const std::vector<PredictionRecord>& records) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      Statement s(db_,
                  "INSERT INTO predictions(model, request_id, row_index, version, created_ms, "
                  "predicted, score) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING");
      for (const PredictionRecord& r : records) {
        s.Reset().Bind(1, r.model).Bind(2, r.id).Bind(3, r.row).Bind(4, r.version);
        s.Bind(5, r.created_ms).Bind(6, r.predicted).Bind(7, r.score).Step();
        RETURN_IF_ERROR(s.status());
      }
      return Status::Ok();
    });
  }

  StatusOr<std::vector<std::pair<FeedbackOutcome, JoinedPrediction>>> JoinFeedback(
      std::string_view model, std::optional<int64_t> version,
      const std::vector<FeedbackItem>& items, int64_t now_ms, int64_t late_before_ms) override {
    std::lock_guard lock(mu_);
    using Out = std::vector<std::pair<FeedbackOutcome, JoinedPrediction>>;
    return InTransaction([&]() -> StatusOr<Out> {
      Out out;
      Statement find(db_,
                     "SELECT version, created_ms, predicted, score, truth IS NOT NULL, dropped "
                     "FROM predictions WHERE model = ? AND request_id = ? AND row_index = ?");
      Statement join(db_,
                     "UPDATE predictions SET truth = ?, labeled_ms = ? "
                     "WHERE model = ? AND request_id = ? AND row_index = ?");
      for (const FeedbackItem& item : items) {
        JoinedPrediction j;
        FeedbackOutcome outcome = FeedbackOutcome::kUnknown;
        find.Reset().Bind(1, model).Bind(2, item.id).Bind(3, item.row);
        if (find.Step()) {
          j = {find.Int(0), find.Int(1), now_ms, find.Text(2), find.OptionalDouble(3), item.truth};
          outcome = version && *version != j.version ? FeedbackOutcome::kUnknown
                    : find.Int(5) != 0 || j.created_ms < late_before_ms ? FeedbackOutcome::kLate
                    : find.Int(4) != 0               ? FeedbackOutcome::kDuplicate
                                                     : FeedbackOutcome::kJoined;
        }
        RETURN_IF_ERROR(find.status());
        if (outcome == FeedbackOutcome::kJoined) {
          join.Reset().Bind(1, item.truth).Bind(2, now_ms).Bind(3, model).Bind(4, item.id);
          join.Bind(5, item.row).Step();
          RETURN_IF_ERROR(join.status());
        }
        out.emplace_back(outcome, std::move(j));
      }
      return out;
    });
  }

  StatusOr<std::vector<JoinedPrediction>> JoinedPredictions(std::string_view model,
                                                            int64_t version,
                                                            int64_t limit) override {
    std::lock_guard lock(mu_);
    std::vector<JoinedPrediction> out;
    Statement s(db_,
                "SELECT created_ms, labeled_ms, predicted, score, truth FROM predictions "
                "WHERE model = ? AND version = ? AND truth IS NOT NULL AND dropped = 0 "
                "ORDER BY labeled_ms DESC LIMIT ?");
    s.Bind(1, model).Bind(2, version).Bind(3, limit);
    while (s.Step()) {
      out.push_back({version, s.Int(0), s.Int(1), s.Text(2), s.OptionalDouble(3), s.Text(4)});
    }
    RETURN_IF_ERROR(s.status());
    return out;
  }

  Status ExpirePredictions(std::string_view model, int64_t drop_before_ms,
                           int64_t forget_before_ms, int64_t keep) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      Statement drop(db_,
                     "UPDATE predictions SET predicted = NULL, score = NULL, truth = NULL, "
                     "dropped = 1 WHERE model = ? AND created_ms < ? AND dropped = 0");
      drop.Bind(1, model).Bind(2, drop_before_ms).Step();
      RETURN_IF_ERROR(drop.status());
      Statement forget(db_, "DELETE FROM predictions WHERE model = ? AND created_ms < ?");
      forget.Bind(1, model).Bind(2, forget_before_ms).Step();
      RETURN_IF_ERROR(forget.status());
      Statement cap(db_,
                    "DELETE FROM predictions WHERE model = ? AND created_ms <= (SELECT "
                    "created_ms FROM predictions WHERE model = ? ORDER BY created_ms DESC "
                    "LIMIT 1 OFFSET ?)");
      cap.Bind(1, model).Bind(2, model).Bind(3, keep).Step();
      return cap.status();
    });
  }

  StatusOr<std::vector<AuditRecord>> History(std::string_view model) override {
    std::lock_guard lock(mu_);
    std::vector<AuditRecord> out;
    Statement s(db_,
                "SELECT id, at, actor, action, alias, from_version, to_version, reason "
                "FROM audit WHERE model = ? ORDER BY id");
    s.Bind(1, model);
    while (s.Step()) {
      AuditRecord r;
      r.id = s.Int(0);
      r.at = s.Text(1);
      r.actor = s.Text(2);
      r.model = std::string(model);
      r.action = s.Text(3);
      r.alias = s.Text(4);
      r.from_version = s.OptionalInt(5);
      r.to_version = s.OptionalInt(6);
      r.reason = s.Text(7);
      out.push_back(std::move(r));
    }
    RETURN_IF_ERROR(s.status());
    return out;
  }

  // SQLite has one writer at a time, so audit ids are committed in order and
  // the largest one is a change marker.
  StatusOr<int64_t> Generation() override {
    std::lock_guard lock(mu_);
    Statement s(db_, "SELECT COALESCE(MAX(id), 0) FROM audit");
    int64_t generation = 0;
    if (s.Step()) generation = s.Int(0);
    RETURN_IF_ERROR(s.status());
    return generation;
  }

 private:
  // Runs `body` (returning a Status or a StatusOr) in one write transaction:
  // committed if it succeeds, rolled back otherwise. Call with mu_ held.
  template <typename Body>
  auto InTransaction(Body body) -> decltype(body()) {
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    auto result = body();
    if (!result.ok()) {
      Exec("ROLLBACK").ok();
      return result;
    }
    RETURN_IF_ERROR(Exec("COMMIT"));
    return result;
  }

  Status Exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) == SQLITE_OK) return Status::Ok();
    std::string message = error != nullptr ? error : sqlite3_errmsg(db_);
    sqlite3_free(error);
    return Status::Internal("registry store: " + message);
  }

  Status Audit(std::string_view model, std::string_view action, std::string_view alias,
               std::optional<int64_t> from, std::optional<int64_t> to, std::string_view actor,
               std::string_view reason) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Statement s(db_,
                "INSERT INTO audit(at, actor, model, action, alias, from_version, to_version, "
                "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    s.Bind(1, NowRfc3339()).Bind(2, actor).Bind(3, model).Bind(4, action);
    s.BindNullable(5, alias).Bind(6, from).Bind(7, to).Bind(8, reason);
    s.Step();
    return s.status();
  }

  // `new_number`: see VersionFiles.
  Status RegisterLocked(const VersionRecord& r, std::string_view actor, bool new_number)
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!r.files.empty()) RETURN_IF_ERROR(ValidateVersionFiles(r.files));
    {
      Statement existing(db_, "SELECT digest FROM versions WHERE model = ? AND version = ?");
      existing.Bind(1, r.model).Bind(2, r.version);
      if (existing.Step()) {
        if (existing.Text(0) == r.digest && !new_number) return Status::Ok();
        return Status::AlreadyExists("version " + std::to_string(r.version) + " of model '" +
                                     r.model + "' is registered with another artifact (" +
                                     existing.Text(0) + "); versions are immutable");
      }
      RETURN_IF_ERROR(existing.status());
    }
    const std::string now = r.created_at.empty() ? NowRfc3339() : r.created_at;
    {
      Statement model(db_, "INSERT OR IGNORE INTO models(name, created_at) VALUES (?, ?)");
      model.Bind(1, r.model).Bind(2, now);
      model.Step();
      RETURN_IF_ERROR(model.status());
    }
    Statement insert(db_,
                     "INSERT INTO versions(model, version, digest, size, format, source, "
                     "created_at, created_by, metadata, files) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    insert.Bind(1, r.model).Bind(2, r.version).Bind(3, r.digest).Bind(4, r.size);
    insert.Bind(5, r.format).Bind(6, r.source).Bind(7, now).Bind(8, r.created_by);
    insert.Bind(9, r.metadata_json.empty() ? std::string_view("{}") : r.metadata_json);
    insert.Bind(10, VersionFilesJson(r.files));
    insert.Step();
    RETURN_IF_ERROR(insert.status());
    return Audit(r.model, "register", "", std::nullopt, r.version, actor,
                 r.reason.empty() ? r.source : r.source + ": " + r.reason);
  }

  // A rollback must undo the alias's latest move as the store has it now:
  // another process sharing the file may have moved it since the caller read
  // the history. Call inside the transaction.
  Status CheckRollbackTarget(std::string_view model, std::string_view alias, const AliasState& to)
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<AuditRecord> history;
    Statement s(db_,
                "SELECT action, to_version, reason FROM audit WHERE model = ? AND alias = ? "
                "ORDER BY id");
    s.Bind(1, model).Bind(2, alias);
    while (s.Step()) {
      AuditRecord r;
      r.action = s.Text(0);
      r.alias = std::string(alias);
      r.to_version = s.OptionalInt(1);
      r.reason = s.Text(2);
      history.push_back(std::move(r));
    }
    RETURN_IF_ERROR(s.status());
    return CheckRollback(history, model, alias, to);
  }

  // NotFound unless the version is registered; Aborted unless it is active.
  Status CheckActiveLocked(std::string_view model, int64_t version) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Statement known(db_, "SELECT status FROM versions WHERE model = ? AND version = ?");
    known.Bind(1, model).Bind(2, version);
    const bool found = known.Step();
    const std::string status = found ? known.Text(0) : std::string();
    RETURN_IF_ERROR(known.status());
    const std::string what = "version " + std::to_string(version) + " of model '" +
                             std::string(model) + "'";
    if (!found) return Status::NotFound(what + " is not registered");
    if (status == "archived") return Status::Aborted(what + " is archived; restore it first");
    if (status == "deleted") return Status::Aborted(what + " was deleted");
    return Status::Ok();
  }

  StatusOr<std::optional<int64_t>> SetAliasLocked(std::string_view model, std::string_view alias,
                                                  int64_t version, std::string_view action,
                                                  std::string_view actor, std::string_view reason,
                                                  std::string_view sticky_key = {})
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RETURN_IF_ERROR(CheckActiveLocked(model, version));
    std::optional<int64_t> previous;
    {
      Statement current(db_, "SELECT version FROM aliases WHERE model = ? AND alias = ?");
      current.Bind(1, model).Bind(2, alias);
      if (current.Step()) previous = current.Int(0);
      RETURN_IF_ERROR(current.status());
    }
    {
      Statement clear(db_, "DELETE FROM alias_splits WHERE model = ? AND alias = ?");
      clear.Bind(1, model).Bind(2, alias);
      clear.Step();
      RETURN_IF_ERROR(clear.status());
    }
    Statement upsert(db_,
                     "INSERT INTO aliases(model, alias, version, updated_at, sticky_key) "
                     "VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT(model, alias) DO UPDATE SET version = excluded.version, "
                     "updated_at = excluded.updated_at, sticky_key = excluded.sticky_key");
    upsert.Bind(1, model).Bind(2, alias).Bind(3, version).Bind(4, NowRfc3339());
    upsert.Bind(5, sticky_key);
    upsert.Step();
    RETURN_IF_ERROR(upsert.status());
    RETURN_IF_ERROR(Audit(model, action, alias, previous, version, actor, reason));
    return previous;
  }

  StatusOr<std::optional<int64_t>> SetShadowLocked(std::string_view model, int64_t version,
                                                   int percent, std::string_view actor,
                                                   std::string_view reason)
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::optional<int64_t> previous;
    {
      Statement current(db_, "SELECT version FROM shadows WHERE model = ?");
      current.Bind(1, model);
      if (current.Step()) previous = current.Int(0);
      RETURN_IF_ERROR(current.status());
    }
    {
      Statement clear(db_, "DELETE FROM shadows WHERE model = ?");
      clear.Bind(1, model);
      clear.Step();
      RETURN_IF_ERROR(clear.status());
    }
    std::optional<int64_t> to;
    if (percent > 0) {
      RETURN_IF_ERROR(CheckActiveLocked(model, version));
      Statement insert(db_,
                       "INSERT INTO shadows(model, version, percent, updated_at) VALUES (?, ?, ?, ?)");
      insert.Bind(1, model).Bind(2, version).Bind(3, static_cast<int64_t>(percent));
      insert.Bind(4, NowRfc3339());
      insert.Step();
      if (!insert.status().ok()) {
        return Status::NotFound("version " + std::to_string(version) + " of model '" +
                                std::string(model) + "' is not registered");
      }
      to = version;
    }
    const std::string what = percent > 0 ? std::to_string(percent) + "%" : std::string("off");
    RETURN_IF_ERROR(Audit(model, "shadow", "", previous, to, actor,
                          reason.empty() ? what : what + ": " + std::string(reason)));
    return previous;
  }

  Status SetVersionStatusLocked(std::string_view model, int64_t version, VersionStatus to,
                                std::string_view actor, std::string_view reason)
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string what = "version " + std::to_string(version) + " of model '" +
                             std::string(model) + "'";
    std::optional<VersionStatus> from;
    {
      Statement current(db_, "SELECT status FROM versions WHERE model = ? AND version = ?");
      current.Bind(1, model).Bind(2, version);
      if (current.Step()) from = ParseVersionStatus(current.Text(0));
      RETURN_IF_ERROR(current.status());
    }
    if (!from) return Status::NotFound(what + " is not registered");
    const char* action = to == VersionStatus::kArchived ? "archive"
                         : to == VersionStatus::kActive ? "restore"
                                                        : "delete";
    const bool allowed = (to == VersionStatus::kArchived && *from == VersionStatus::kActive) ||
                         (to == VersionStatus::kActive && *from == VersionStatus::kArchived) ||
                         (to == VersionStatus::kDeleted && *from != VersionStatus::kDeleted);
    if (!allowed) {
      return Status::Aborted("cannot " + std::string(action) + " " + what + ": it is " +
                             std::string(VersionStatusName(*from)));
    }
    if (to != VersionStatus::kActive) {
      // Every alias that names the version, alone or in its split.
      Statement users(db_,
                      "SELECT alias FROM aliases WHERE model = ?1 AND version = ?2 UNION "
                      "SELECT alias FROM alias_splits WHERE model = ?1 AND version = ?2 "
                      "ORDER BY alias");
      users.Bind(1, model).Bind(2, version);
      std::string names;
      while (users.Step()) names += (names.empty() ? "'" : ", '") + users.Text(0) + "'";
      RETURN_IF_ERROR(users.status());
      if (!names.empty()) {
        return Status::Aborted("cannot " + std::string(action) + " " + what +
                               ": alias " + names + " uses it; move the alias first");
      }
      Statement shadow(db_, "SELECT 1 FROM shadows WHERE model = ? AND version = ?");
      shadow.Bind(1, model).Bind(2, version);
      const bool shadowed = shadow.Step();
      RETURN_IF_ERROR(shadow.status());
      if (shadowed) {
        return Status::Aborted("cannot " + std::string(action) + " " + what +
                               ": it is the model's shadow; turn the shadow off first");
      }
    }
    Statement update(db_, "UPDATE versions SET status = ? WHERE model = ? AND version = ?");
    update.Bind(1, VersionStatusName(to)).Bind(2, model).Bind(3, version);
    update.Step();
    RETURN_IF_ERROR(update.status());
    return Audit(model, action, "", std::nullopt, version, actor, reason);
  }

 public:
  Status CreateApiKey(const ApiKeyRecord& key) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      Statement taken(db_, "SELECT 1 FROM api_keys WHERE name = ? OR id = ?");
      taken.Bind(1, key.name).Bind(2, key.id);
      const bool exists = taken.Step();
      RETURN_IF_ERROR(taken.status());
      if (exists) {
        return Status::AlreadyExists("an API key named '" + key.name +
                                     "' exists already (names are never reused)");
      }
      Statement insert(db_,
                       "INSERT INTO api_keys(id, name, salt, hash, scopes, rate, created_at, "
                       "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
      insert.Bind(1, key.id).Bind(2, key.name).Bind(3, key.salt).Bind(4, key.hash);
      insert.Bind(5, JoinScopes(key.scopes)).Bind(6, key.rate);
      insert.Bind(7, key.created_at.empty() ? NowRfc3339() : key.created_at);
      insert.BindNullable(8, key.expires_at);
      insert.Step();
      return insert.status();
    });
  }

  StatusOr<std::vector<ApiKeyRecord>> ApiKeys() override {
    std::lock_guard lock(mu_);
    std::vector<ApiKeyRecord> out;
    Statement s(db_,
                "SELECT id, name, salt, hash, scopes, rate, created_at, expires_at, revoked_at "
                "FROM api_keys ORDER BY name");
    while (s.Step()) {
      out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3), SplitScopes(s.Text(4)),
                     s.Double(5), s.Text(6), s.Text(7), s.Text(8)});
    }
    RETURN_IF_ERROR(s.status());
    return out;
  }

  Status RevokeApiKey(std::string_view name, std::string_view at) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      Statement find(db_, "SELECT revoked_at IS NOT NULL FROM api_keys WHERE name = ?");
      find.Bind(1, name);
      const bool found = find.Step();
      const bool revoked = found && find.Int(0) != 0;
      RETURN_IF_ERROR(find.status());
      if (!found) return Status::NotFound("no API key named '" + std::string(name) + "'");
      if (revoked) {
        return Status::FailedPrecondition("the API key '" + std::string(name) +
                                          "' is revoked already");
      }
      Statement update(db_, "UPDATE api_keys SET revoked_at = ? WHERE name = ?");
      update.Bind(1, at).Bind(2, name);
      update.Step();
      return update.status();
    });
  }

 private:
  std::mutex mu_;
  sqlite3* const db_;  // used only with mu_ held
};

}  // namespace

StatusOr<std::unique_ptr<RegistryStore>> OpenSqliteRegistryStore(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::Unavailable("cannot open the registry store " + path + ": " + message);
  }
  auto store = std::make_unique<SqliteRegistryStore>(db);
  // WAL: readers never wait for the writer; synchronous=FULL: a committed
  // promotion survives a power cut, not only a crash.
  // busy_timeout first: switching a new file to WAL takes a lock that another
  // process opening it at the same moment may hold. SQLite answers that
  // switch SQLITE_BUSY at once, without its busy handler, when waiting could
  // deadlock: it is retried here for up to the same 5 s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (const char* pragma : {"PRAGMA busy_timeout=5000", "PRAGMA journal_mode=WAL",
                             "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    while (true) {
      char* error = nullptr;
      const int rc = sqlite3_exec(db, pragma, nullptr, nullptr, &error);
      if (rc == SQLITE_OK) break;
      std::string message = error != nullptr ? error : "unknown error";
      sqlite3_free(error);
      if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) &&
          std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      return Status::Unavailable("cannot set up the registry store " + path + ": " + message);
    }
  }
  RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<RegistryStore>(std::move(store));
}

}  // namespace berth
