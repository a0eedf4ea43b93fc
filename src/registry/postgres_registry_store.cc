// The RegistryStore on PostgreSQL (libpq), for replicas that share no disk:
// the same records as the SQLite store, plus the artifacts' bytes and each
// model's config file. One connection, serialised by a mutex (registry calls
// are rare and small), re-established when it breaks.
//
// Concurrency between replicas: every mutation of a model takes a
// transaction-scoped advisory lock on the model first, so moves of one model
// are serialised across replicas as SQLite's single writer serialises them in
// one process; the audit insert bumps the one-row `generation` counter (a
// trigger), whose row lock makes the counter's values commit in order, so a
// replica that polls it never misses a change.
#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "core/logging.h"
#include "core/thread_annotations.h"
#include "registry/artifact_digest.h"
#include "registry/config_parser.h"
#include "registry/registry_store.h"
#include "registry/postgres_params.h"
#include "registry/postgres_schema.h"
#include "registry/version_files.h"

namespace berth {
namespace {
using pg::Int;
using pg::OneLine;
using pg::OptionalInt;
using pg::Params;
using pg::Result;
using pg::ScrubPassword;
using pg::Text;
using pg::UrlPassword;

VersionStatus ParseVersionStatus(std::string_view text) {
  if (text == "archived") return VersionStatus::kArchived;
  if (text == "deleted") return VersionStatus::kDeleted;
  return VersionStatus::kActive;
}

// Advisory lock keys (pg_advisory_xact_lock(int, int)): the first names the
// purpose, so Berth's locks never collide with another application's.
constexpr int kMigrationLockClass = 0x62657274;  // "bert"
constexpr int kModelLockClass = 0x62657275;

class PostgresRegistryStore final : public RegistryStore {
 public:
  PostgresRegistryStore(PGconn* conn, std::string description, std::string password)
      : conn_(conn), description_(std::move(description)), password_(std::move(password)) {}
  ~PostgresRegistryStore() override { PQfinish(conn_); }

  Status Migrate() {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      // Two replicas starting at once: the second waits here, then finds
      // the migrations applied.
      Params key;
      key.Int(kMigrationLockClass);
      RETURN_IF_ERROR(Exec("SELECT pg_advisory_xact_lock($1::int, 0)", key).status());
      RETURN_IF_ERROR(Exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                           "version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)")
                          .status());
      ASSIGN_OR_RETURN(Result applied_rows,
                       Exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
      const int64_t applied = Int(applied_rows.get(), 0, 0);
      const int64_t known = static_cast<int64_t>(PostgresMigrations().size());
      if (applied > known) {
        return Status::FailedPrecondition(
            "the registry store's schema (version " + std::to_string(applied) +
            ") is newer than this berth understands (" + std::to_string(known) +
            "): upgrade berth");
      }
      for (int64_t v = applied; v < known; ++v) {
        Status s = ExecScript(PostgresMigrations()[v]);
        if (s.ok()) {
          Params p;
          p.Int(v + 1);
          s = Exec("INSERT INTO schema_migrations(version, applied_at) "
                   "VALUES ($1, to_char(now() AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))",
                   p)
                  .status();
        }
        if (!s.ok()) return s.WithContext("registry store migration " + std::to_string(v + 1));
      }
      return Status::Ok();
    });
  }

  Status RegisterVersion(const VersionRecord& r, std::string_view actor) override {
    return RegisterVersionWithFiles(r, actor, VersionFiles{});
  }

  bool HoldsArtifacts() const override { return true; }

  Status RegisterVersionWithFiles(const VersionRecord& r, std::string_view actor,
                                  const VersionFiles& files) override {
    if (files.artifact.data() != nullptr && Sha256Bytes(files.artifact).digest != r.digest) {
      return Status::InvalidArgument("version " + std::to_string(r.version) + " of model '" +
                                     r.model + "': the artifact's SHA-256 is not " + r.digest);
    }
    if (!files.config_name.empty() && !IsConfigFileName(files.config_name)) {
      return Status::InvalidArgument("'" + files.config_name + "' is not a config file's name");
    }
    if (!r.files.empty()) RETURN_IF_ERROR(ValidateVersionFiles(r.files));
    RETURN_IF_ERROR(CheckVersionContents(r, files));
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      RETURN_IF_ERROR(LockModel(r.model));
      {
        Params p;
        p.Text(r.model).Int(r.version);
        ASSIGN_OR_RETURN(Result existing,
                         Exec("SELECT digest FROM versions WHERE model = $1 AND version = $2", p));
        if (PQntuples(existing.get()) > 0) {
          const std::string digest = Text(existing.get(), 0, 0);
          if (digest == r.digest && !files.new_number) return Status::Ok();
          return Status::AlreadyExists(
              "version " + std::to_string(r.version) + " of model '" + r.model +
              (digest == r.digest ? std::string("' is registered already")
                                  : "' is registered with another artifact (" + digest + ")") +
              "; versions are immutable");
        }
      }
      {
        Params p;
        p.Text(r.model).NullableText(r.created_at);
        RETURN_IF_ERROR(Exec("INSERT INTO models(name, created_at) "
                             "VALUES ($1, COALESCE($2, berth_now())) ON CONFLICT DO NOTHING",
                             p)
                            .status());
      }
      {
        Params p;
        p.Text(r.model).Int(r.version).Text(r.digest).Int(r.size).Text(r.format).Text(r.source);
        p.NullableText(r.created_at).Text(r.created_by);
        p.Text(r.metadata_json.empty() ? std::string_view("{}") : r.metadata_json);
        p.Text(VersionFilesJson(r.files));
        RETURN_IF_ERROR(Exec("INSERT INTO versions(model, version, digest, size, format, source, "
                             "created_at, created_by, metadata, files) "
                             "VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, berth_now()), $8, $9, "
                             "$10)",
                             p)
                            .status());
      }
      if (files.artifact.data() != nullptr) RETURN_IF_ERROR(PutArtifact(r.digest, files.artifact));
      for (const VersionFile& f : r.files) {
        const auto bytes = files.contents.find(f.name);
        if (bytes != files.contents.end()) RETURN_IF_ERROR(PutArtifact(f.digest, bytes->second));
      }
      if (!files.config_name.empty()) {
        Params p;
        p.Text(r.model).Text(files.config_name).Bytes(files.config);
        RETURN_IF_ERROR(Exec("INSERT INTO model_configs(model, file_name, bytes) "
                             "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                             p)
                            .status());
      }
      return Audit(r.model, "register", "", std::nullopt, r.version, actor,
                 r.reason.empty() ? r.source : r.source + ": " + r.reason);
    });
  }

  StatusOr<std::string> FetchArtifact(std::string_view digest) override {
    std::lock_guard lock(mu_);
    Params p;
    p.Text(digest);
    ASSIGN_OR_RETURN(Result r, Read("SELECT bytes FROM artifacts WHERE digest = $1", p,
                                    /*binary=*/true));
    if (PQntuples(r.get()) == 0) {
      return Status::NotFound("the registry store holds no artifact " + std::string(digest));
    }
    return Text(r.get(), 0, 0);
  }

  StatusOr<StoredConfig> FetchConfig(std::string_view model) override {
    std::lock_guard lock(mu_);
    Params p;
    p.Text(model);
    ASSIGN_OR_RETURN(Result r, Read("SELECT file_name, bytes FROM model_configs WHERE model = $1",
                                    p, /*binary=*/true));
    if (PQntuples(r.get()) == 0) {
      return Status::NotFound("the registry store holds no config file for model '" +
                              std::string(model) + "'");
    }
    return StoredConfig{Text(r.get(), 0, 0), Text(r.get(), 0, 1)};
  }

  StatusOr<std::vector<std::string>> Models() override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(Result r, Read("SELECT name FROM models ORDER BY name", Params()));
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) out.push_back(Text(r.get(), i, 0));
    return out;
  }

  StatusOr<std::vector<VersionRecord>> Versions(std::string_view model) override {
    std::lock_guard lock(mu_);
    Params p;
    p.Text(model);
    ASSIGN_OR_RETURN(
        Result r,
        Read("SELECT version, digest, size, format, source, created_at, created_by, metadata, "
             "status, signature, files FROM versions WHERE model = $1 ORDER BY version",
             p));
    std::vector<VersionRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      VersionRecord v;
      v.model = std::string(model);
      v.version = Int(r.get(), i, 0);
      v.digest = Text(r.get(), i, 1);
      v.size = Int(r.get(), i, 2);
      v.format = Text(r.get(), i, 3);
      v.source = Text(r.get(), i, 4);
      v.created_at = Text(r.get(), i, 5);
      v.created_by = Text(r.get(), i, 6);
      v.metadata_json = Text(r.get(), i, 7);
      v.status = ParseVersionStatus(Text(r.get(), i, 8));
      v.signature_json = Text(r.get(), i, 9);
      ASSIGN_OR_RETURN(v.files, ParseVersionFilesJson(Text(r.get(), i, 10)));
      out.push_back(std::move(v));
    }
    return out;
  }

  StatusOr<std::vector<AliasRecord>> Aliases(std::string_view model) override {
    std::lock_guard lock(mu_);
    Params p;
    p.Text(model);
    // One statement, so the aliases and their splits are read at one
    // snapshot even while another replica moves them.
    ASSIGN_OR_RETURN(
        Result r,
        Read("SELECT a.alias, a.version, a.updated_at, s.version, s.weight, a.sticky_key "
             "FROM aliases a LEFT JOIN alias_splits s ON s.model = a.model AND s.alias = a.alias "
             "WHERE a.model = $1 ORDER BY a.alias, s.version",
             p));
    std::vector<AliasRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      const std::string alias = Text(r.get(), i, 0);
      if (out.empty() || out.back().alias != alias) {
        out.push_back({std::string(model), alias, Int(r.get(), i, 1), Text(r.get(), i, 2), {},
                       Text(r.get(), i, 5)});
      }
      if (!PQgetisnull(r.get(), i, 3)) {
        out.back().split.push_back({Int(r.get(), i, 3), static_cast<int>(Int(r.get(), i, 4))});
      }
    }
    return out;
  }

  StatusOr<std::optional<int64_t>> SetAlias(std::string_view model, std::string_view alias,
                                            int64_t version, std::string_view action,
                                            std::string_view actor,
                                            std::string_view reason) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> StatusOr<std::optional<int64_t>> {
      RETURN_IF_ERROR(LockModel(model));
      if (action == "rollback") {
        // The caller chose the target from the history it read before this
        // transaction; another replica may have moved the alias since. Under
        // the model's lock the history is final: a rollback that no longer
        // undoes the latest move is refused rather than applied twice.
        ASSIGN_OR_RETURN(std::vector<AuditRecord> history, HistoryLocked(model));
        RETURN_IF_ERROR(CheckRollback(history, model, alias, AliasState{version, {}, {}}));
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
      RETURN_IF_ERROR(LockModel(model));
      for (const WeightedVersion& w : split) {
        ASSIGN_OR_RETURN(std::optional<VersionStatus> status, StatusOf(model, w.version));
        if (!status) {
          return Status::InvalidArgument("cannot split over version " +
                                         std::to_string(w.version) + " of model '" +
                                         std::string(model) + "': it is not registered");
        }
        RETURN_IF_ERROR(CheckActive(model, w.version, *status));
      }
      const AliasState to{HeaviestVersion(split), split, std::string(sticky_key)};
      if (action == "rollback") {  // as SetAlias checks one
        ASSIGN_OR_RETURN(std::vector<AuditRecord> history, HistoryLocked(model));
        RETURN_IF_ERROR(CheckRollback(history, model, alias, to));
      }
      ASSIGN_OR_RETURN(auto previous,
                       SetAliasLocked(model, alias, to.version, action, actor, why, sticky_key));
      for (const WeightedVersion& w : split) {
        Params p;
        p.Text(model).Text(alias).Int(w.version).Int(w.weight);
        RETURN_IF_ERROR(Exec("INSERT INTO alias_splits(model, alias, version, weight) "
                             "VALUES ($1, $2, $3, $4)",
                             p)
                            .status());
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
    return InTransaction([&]() -> StatusOr<std::optional<int64_t>> {
      RETURN_IF_ERROR(LockModel(model));
      Params by_model;
      by_model.Text(model);
      std::optional<int64_t> previous;
      {
        ASSIGN_OR_RETURN(Result r, Exec("SELECT version FROM shadows WHERE model = $1", by_model));
        if (PQntuples(r.get()) > 0) previous = Int(r.get(), 0, 0);
      }
      RETURN_IF_ERROR(Exec("DELETE FROM shadows WHERE model = $1", by_model).status());
      std::optional<int64_t> to;
      if (percent > 0) {
        ASSIGN_OR_RETURN(std::optional<VersionStatus> status, StatusOf(model, version));
        if (!status) {
          return Status::NotFound("version " + std::to_string(version) + " of model '" +
                                  std::string(model) + "' is not registered");
        }
        RETURN_IF_ERROR(CheckActive(model, version, *status));
        Params p;
        p.Text(model).Int(version).Int(percent);
        RETURN_IF_ERROR(Exec("INSERT INTO shadows(model, version, percent, updated_at) "
                             "VALUES ($1, $2, $3, berth_now())",
                             p)
                            .status());
        to = version;
      }
      const std::string what = percent > 0 ? std::to_string(percent) + "%" : std::string("off");
      RETURN_IF_ERROR(Audit(model, "shadow", "", previous, to, actor,
                            reason.empty() ? what : what + ": " + std::string(reason)));
      return previous;
    });
  }

  Status SetBaseline(std::string_view model, int64_t version, std::string_view profile_json,
                     std::string_view actor, std::string_view reason) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      RETURN_IF_ERROR(LockModel(model));
      ASSIGN_OR_RETURN(std::optional<VersionStatus> status, StatusOf(model, version));
      if (!status) {
        return Status::NotFound("version " + std::to_string(version) + " of model '" +
                                std::string(model) + "' is not registered");
      }
      Params key;
      key.Text(model).Int(version);
      RETURN_IF_ERROR(
          Exec("DELETE FROM baselines WHERE model = $1 AND version = $2", key).status());
      if (!profile_json.empty()) {
        Params p;
        p.Text(model).Int(version).Text(profile_json);
        RETURN_IF_ERROR(Exec("INSERT INTO baselines(model, version, profile, updated_at) "
                             "VALUES ($1, $2, $3, berth_now())",
                             p)
                            .status());
      }
      const std::string what = profile_json.empty() ? "cleared" : "set";
      return Audit(model, "baseline", "", std::nullopt, version, actor,
                   reason.empty() ? what : what + ": " + std::string(reason));
    });
  }

  StatusOr<std::optional<std::string>> Baseline(std::string_view model,
                                                int64_t version) override {
    std::lock_guard lock(mu_);
    Params p;
    p.Text(model).Int(version);
    ASSIGN_OR_RETURN(Result r,
                     Read("SELECT profile FROM baselines WHERE model = $1 AND version = $2", p));
    std::optional<std::string> out;
    if (PQntuples(r.get()) > 0) out = Text(r.get(), 0, 0);
    return out;
  }

  Status SetVersionStatus(std::string_view model, int64_t version, VersionStatus to,
                          std::string_view actor, std::string_view reason) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      RETURN_IF_ERROR(LockModel(model));
      const std::string what =
          "version " + std::to_string(version) + " of model '" + std::string(model) + "'";
      ASSIGN_OR_RETURN(std::optional<VersionStatus> from, StatusOf(model, version));
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
      Params key;
      key.Text(model).Int(version);
      if (to != VersionStatus::kActive) {
        // Every alias that names the version, alone or in its split.
        ASSIGN_OR_RETURN(Result users,
                         Exec("SELECT alias FROM aliases WHERE model = $1 AND version = $2 UNION "
                              "SELECT alias FROM alias_splits WHERE model = $1 AND version = $2 "
                              "ORDER BY alias",
                              key));
        std::string names;
        for (int i = 0; i < PQntuples(users.get()); ++i) {
          names += (names.empty() ? "'" : ", '") + Text(users.get(), i, 0) + "'";
        }
        if (!names.empty()) {
          return Status::Aborted("cannot " + std::string(action) + " " + what + ": alias " +
                                 names + " uses it; move the alias first");
        }
        ASSIGN_OR_RETURN(Result shadow,
                         Exec("SELECT 1 FROM shadows WHERE model = $1 AND version = $2", key));
        if (PQntuples(shadow.get()) > 0) {
          return Status::Aborted("cannot " + std::string(action) + " " + what +
                                 ": it is the model's shadow; turn the shadow off first");
        }
      }
      Params update;
      update.Text(VersionStatusName(to)).Text(model).Int(version);
      RETURN_IF_ERROR(
          Exec("UPDATE versions SET status = $1 WHERE model = $2 AND version = $3", update)
              .status());
      return Audit(model, action, "", std::nullopt, version, actor, reason);
    });
  }

  StatusOr<std::optional<ShadowTarget>> Shadow(std::string_view model) override {
    std::lock_guard lock(mu_);
    Params p;
    p.Text(model);
    ASSIGN_OR_RETURN(Result r, Read("SELECT version, percent FROM shadows WHERE model = $1", p));
    std::optional<ShadowTarget> out;
    if (PQntuples(r.get()) > 0) {
      out = ShadowTarget{Int(r.get(), 0, 0), static_cast<int>(Int(r.get(), 0, 1))};
    }
    return out;
  }

  Status RecordSignature(std::string_view model, int64_t version,
                         std::string_view signature_json) override {
    std::lock_guard lock(mu_);
    Params p;
    p.Text(signature_json).Text(model).Int(version);
    ASSIGN_OR_RETURN(Result r, Exec("UPDATE versions SET signature = $1 WHERE model = $2 AND "
                                    "version = $3 AND signature = '' RETURNING 1",
                                    p));
    if (PQntuples(r.get()) > 0) return Status::Ok();
    ASSIGN_OR_RETURN(bool found, IsRegistered(model, version));
    return found ? Status::Ok() : UnregisteredVersion(model, version);
  }

  Status AddEvaluation(std::string_view model, int64_t version, std::string_view evaluation_json,
                       std::string_view actor) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      RETURN_IF_ERROR(LockModel(model));
      ASSIGN_OR_RETURN(std::optional<VersionStatus> status, StatusOf(model, version));
      if (!status || *status == VersionStatus::kDeleted) {
        return UnregisteredVersion(model, version);
      }
      Params p;
      p.Text(model).Int(version).Text(actor).Text(evaluation_json);
      RETURN_IF_ERROR(Exec("INSERT INTO evaluations(model, version, at, actor, evaluation) "
                           "VALUES ($1, $2, berth_now(), $3, $4)",
                           p)
                          .status());
      return Audit(model, "evaluate", "", std::nullopt, version, actor, "");
    });
  }

  StatusOr<std::vector<EvaluationRecord>> Evaluations(std::string_view model) override {
    std::lock_guard lock(mu_);
    Params p;
    p.Text(model);
    ASSIGN_OR_RETURN(Result r, Read("SELECT id, version, at, actor, evaluation FROM evaluations "
                                    "WHERE model = $1 ORDER BY id",
                                    p));
    std::vector<EvaluationRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      EvaluationRecord e;
      e.id = Int(r.get(), i, 0);
      e.model = std::string(model);
      e.version = Int(r.get(), i, 1);
      e.at = Text(r.get(), i, 2);
      e.actor = Text(r.get(), i, 3);
      e.evaluation_json = Text(r.get(), i, 4);
      out.push_back(std::move(e));
    }
    return out;
  }

  StatusOr<std::vector<AuditRecord>> History(std::string_view model) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(EnsureConnected());
    auto history = HistoryLocked(model);
    if (history.ok() || PQstatus(conn_) == CONNECTION_OK) return history;
    RETURN_IF_ERROR(EnsureConnected());
    return HistoryLocked(model);
  }

  // Predictions: not audited and no model lock (they change no registry
  // record); each replica writes its own requests' rows.
  Status SavePredictions(const std::vector<PredictionRecord>& records) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      // Up to 1000 rows a statement (7 parameters each, under libpq's 65535).
      for (size_t start = 0; start < records.size(); start += 1000) {
        Params p;
        std::string sql =
            "INSERT INTO predictions(model, request_id, row_index, version, created_ms, "
            "predicted, score) VALUES ";
        for (size_t i = start; i < std::min(records.size(), start + 1000); ++i) {
          const PredictionRecord& r = records[i];
          const int n = p.size();
          sql += (i > start ? ",(" : "(");
          for (int k = 1; k <= 7; ++k) sql += "$" + std::to_string(n + k) + (k < 7 ? "," : ")");
          p.Text(r.model).Text(r.id).Int(r.row).Int(r.version).Int(r.created_ms);
          p.Text(r.predicted).OptionalDouble(r.score);
        }
        sql += " ON CONFLICT DO NOTHING";
        RETURN_IF_ERROR(Exec(sql.c_str(), p).status());
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
      for (const FeedbackItem& item : items) {
        Params key;
        key.Text(model).Text(item.id).Int(item.row);
        // FOR UPDATE: two replicas joining the same row serialise here.
        ASSIGN_OR_RETURN(Result r, Exec("SELECT version, created_ms, predicted, score, "
                                        "truth IS NOT NULL, dropped FROM predictions WHERE "
                                        "model = $1 AND request_id = $2 AND row_index = $3 "
                                        "FOR UPDATE",
                                        key));
        JoinedPrediction j;
        FeedbackOutcome outcome = FeedbackOutcome::kUnknown;
        if (PQntuples(r.get()) > 0) {
          const PGresult* row = r.get();
          j = {Int(row, 0, 0), Int(row, 0, 1), now_ms, Text(row, 0, 2),
               pg::OptionalDouble(row, 0, 3), item.truth};
          outcome = version && *version != j.version ? FeedbackOutcome::kUnknown
                    : Text(row, 0, 5) == "t" || j.created_ms < late_before_ms
                        ? FeedbackOutcome::kLate
                    : Text(row, 0, 4) == "t" ? FeedbackOutcome::kDuplicate
                                             : FeedbackOutcome::kJoined;
        }
        if (outcome == FeedbackOutcome::kJoined) {
          Params p;
          p.Text(item.truth).Int(now_ms).Text(model).Text(item.id).Int(item.row);
          RETURN_IF_ERROR(Exec("UPDATE predictions SET truth = $1, labeled_ms = $2 WHERE "
                               "model = $3 AND request_id = $4 AND row_index = $5",
                               p)
                              .status());
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
    Params p;
    p.Text(model).Int(version).Int(limit);
    ASSIGN_OR_RETURN(Result r, Read("SELECT created_ms, labeled_ms, predicted, score, truth "
                                    "FROM predictions WHERE model = $1 AND version = $2 AND "
                                    "truth IS NOT NULL AND NOT dropped "
                                    "ORDER BY labeled_ms DESC LIMIT $3",
                                    p));
    std::vector<JoinedPrediction> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      out.push_back({version, Int(r.get(), i, 0), Int(r.get(), i, 1), Text(r.get(), i, 2),
                     pg::OptionalDouble(r.get(), i, 3), Text(r.get(), i, 4)});
    }
    return out;
  }

  Status ExpirePredictions(std::string_view model, int64_t drop_before_ms,
                           int64_t forget_before_ms, int64_t keep) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      Params drop, forget, cap;
      drop.Text(model).Int(drop_before_ms);
      RETURN_IF_ERROR(Exec("UPDATE predictions SET predicted = NULL, score = NULL, truth = "
                           "NULL, dropped = TRUE WHERE model = $1 AND created_ms < $2 AND "
                           "NOT dropped",
                           drop)
                          .status());
      forget.Text(model).Int(forget_before_ms);
      RETURN_IF_ERROR(
          Exec("DELETE FROM predictions WHERE model = $1 AND created_ms < $2", forget).status());
      cap.Text(model).Int(keep);
      return Exec("DELETE FROM predictions WHERE model = $1 AND created_ms <= (SELECT "
                  "created_ms FROM predictions WHERE model = $1 ORDER BY created_ms DESC "
                  "LIMIT 1 OFFSET $2)",
                  cap)
          .status();
    });
  }

  Status CreateApiKey(const ApiKeyRecord& key) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      Params p;
      p.Text(key.id).Text(key.name).Text(key.salt).Text(key.hash).Text(JoinScopes(key.scopes));
      p.Double(key.rate).Text(key.created_at.empty() ? NowRfc3339() : key.created_at);
      p.NullableText(key.expires_at);
      ASSIGN_OR_RETURN(Result r, Exec("INSERT INTO api_keys(id, name, salt, hash, scopes, rate, "
                                      "created_at, expires_at) VALUES ($1, $2, $3, $4, $5, "
                                      "$6::float8, $7, $8) ON CONFLICT DO NOTHING",
                                      p));
      if (std::string_view(PQcmdTuples(r.get())) != "1") {
        return Status::AlreadyExists("an API key named '" + key.name +
                                     "' exists already (names are never reused)");
      }
      return Status::Ok();
    });
  }

  StatusOr<std::vector<ApiKeyRecord>> ApiKeys() override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(Result r, Read("SELECT id, name, salt, hash, scopes, rate, created_at, "
                                    "COALESCE(expires_at, ''), COALESCE(revoked_at, '') "
                                    "FROM api_keys ORDER BY name",
                                    Params()));
    std::vector<ApiKeyRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      const PGresult* g = r.get();
      out.push_back({Text(g, i, 0), Text(g, i, 1), Text(g, i, 2), Text(g, i, 3),
                     SplitScopes(Text(g, i, 4)), std::strtod(Text(g, i, 5).c_str(), nullptr),
                     Text(g, i, 6), Text(g, i, 7), Text(g, i, 8)});
    }
    return out;
  }

  Status RevokeApiKey(std::string_view name, std::string_view at) override {
    std::lock_guard lock(mu_);
    return InTransaction([&]() -> Status {
      Params p;
      p.Text(name);
      ASSIGN_OR_RETURN(Result r, Exec("SELECT revoked_at IS NOT NULL FROM api_keys WHERE name = $1 "
                                      "FOR UPDATE",
                                      p));
      if (PQntuples(r.get()) == 0) {
        return Status::NotFound("no API key named '" + std::string(name) + "'");
      }
      if (Text(r.get(), 0, 0) == "t") {
        return Status::FailedPrecondition("the API key '" + std::string(name) +
                                          "' is revoked already");
      }
      Params u;
      u.Text(at).Text(name);
      return Exec("UPDATE api_keys SET revoked_at = $1 WHERE name = $2", u).status();
    });
  }

  StatusOr<int64_t> Generation() override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(Result r, Read("SELECT value FROM generation", Params()));
    if (PQntuples(r.get()) != 1) {
      return Status::Internal("registry store (PostgreSQL): the generation row is missing");
    }
    return Int(r.get(), 0, 0);
  }

 private:
  std::string Scrub(std::string message) const {
    return ScrubPassword(std::move(message), password_);
  }

  // Runs one statement; errors name the store and say what PostgreSQL said.
  StatusOr<Result> Exec(const char* sql, const Params& params = Params(), bool binary = false)
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Check(Result(PQexecParams(conn_, sql, params.size(), nullptr, params.values(),
                                     params.lengths(), params.formats(), binary ? 1 : 0),
                        PQclear));
  }
  // Several statements without parameters (a migration).
  Status ExecScript(const char* sql) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return Check(Result(PQexec(conn_, sql), PQclear)).status();
  }

  StatusOr<Result> Check(Result r) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
    std::string message = r ? PQresultErrorMessage(r.get()) : "";
    if (message.empty()) message = PQerrorMessage(conn_);
    message = Scrub(OneLine(message));
    const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    const std::string sqlstate = state != nullptr ? state : "";
    if (PQstatus(conn_) != CONNECTION_OK) return Unreachable(message);
    // Text that PostgreSQL cannot hold: a NUL byte, or bytes that are not
    // UTF-8 (SQLite would keep them; here they are refused, not cut).
    if (sqlstate == "22021" || sqlstate == "22P05") {
      return Status::InvalidArgument("the registry store cannot hold this text: " + message);
    }
    return Status::Internal("registry store (PostgreSQL): " + message);
  }

  // A connection the server dropped (a restart, a failover, an idle
  // timeout) is noticed only when a statement fails; reset it then.
  Status EnsureConnected() EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
    PQreset(conn_);
    if (PQstatus(conn_) == CONNECTION_OK) {
      if (unreachable_) LOG_INFO("reconnected to the registry store", {{"store", description_}});
      unreachable_ = false;
      return Status::Ok();
    }
    return Unreachable(Scrub(OneLine(PQerrorMessage(conn_))));
  }

  // What a caller (maybe a REST client) is told when the server cannot be
  // reached: not where it is. The log says that, once per outage.
  Status Unreachable(const std::string& why) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!unreachable_) {
      LOG_WARN("the registry store is unreachable", {{"store", description_}, {"error", why}});
    }
    unreachable_ = true;
    return Status::Unavailable(
        "the registry store (PostgreSQL) is unreachable; see the server's log");
  }

  // A statement that changes nothing, retried once on a new connection if
  // the old one turns out to be broken: running it twice is harmless.
  StatusOr<Result> Read(const char* sql, const Params& params, bool binary = false)
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RETURN_IF_ERROR(EnsureConnected());
    StatusOr<Result> r = Exec(sql, params, binary);
    if (r.ok() || PQstatus(conn_) == CONNECTION_OK) return r;
    RETURN_IF_ERROR(EnsureConnected());
    return Exec(sql, params, binary);
  }

  // Runs `body` (returning a Status or a StatusOr) in one transaction:
  // committed if it succeeds, rolled back otherwise. Only BEGIN is retried
  // on a new connection: once a statement of the body has been sent, whether
  // a lost connection committed it is unknown, so the error is returned.
  // Call with mu_ held (clang cannot name mu_ beside a trailing return type).
  template <typename Body>
  auto InTransaction(Body body) -> decltype(body()) {
    RETURN_IF_ERROR(Read("BEGIN", Params()).status());
    auto result = body();
    if (!result.ok()) {
      if (PQstatus(conn_) == CONNECTION_OK) Exec("ROLLBACK").status().ok();
      return result;
    }
    RETURN_IF_ERROR(Exec("COMMIT").status());
    return result;
  }

  Status LockModel(std::string_view model) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Params p;
    p.Int(kModelLockClass).Text(model);
    return Exec("SELECT pg_advisory_xact_lock($1::int, hashtext($2))", p).status();
  }

  StatusOr<bool> IsRegistered(std::string_view model, int64_t version)
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Params p;
    p.Text(model).Int(version);
    ASSIGN_OR_RETURN(Result r, Exec("SELECT 1 FROM versions WHERE model = $1 AND version = $2", p));
    return PQntuples(r.get()) > 0;
  }

  // The version's status; nullopt if it is not registered.
  StatusOr<std::optional<VersionStatus>> StatusOf(std::string_view model, int64_t version)
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Params p;
    p.Text(model).Int(version);
    ASSIGN_OR_RETURN(Result r,
                     Exec("SELECT status FROM versions WHERE model = $1 AND version = $2", p));
    if (PQntuples(r.get()) == 0) return std::optional<VersionStatus>();
    return std::optional<VersionStatus>(ParseVersionStatus(Text(r.get(), 0, 0)));
  }

  // Aborted unless `status` is active: an archived or deleted version is
  // never an alias's, a split's or the shadow's.
  static Status CheckActive(std::string_view model, int64_t version, VersionStatus status) {
    const std::string what =
        "version " + std::to_string(version) + " of model '" + std::string(model) + "'";
    if (status == VersionStatus::kArchived) {
      return Status::Aborted(what + " is archived; restore it first");
    }
    if (status == VersionStatus::kDeleted) return Status::Aborted(what + " was deleted");
    return Status::Ok();
  }

  // Stores the bytes once per digest: a version that repeats an earlier
  // one's artifact sends nothing.
  Status PutArtifact(std::string_view digest, std::string_view bytes)
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Params key;
    key.Text(digest);
    ASSIGN_OR_RETURN(Result known, Exec("SELECT 1 FROM artifacts WHERE digest = $1", key));
    if (PQntuples(known.get()) > 0) return Status::Ok();
    Params p;
    p.Text(digest).Int(static_cast<int64_t>(bytes.size())).Bytes(bytes);
    return Exec("INSERT INTO artifacts(digest, size, bytes, created_at) "
                "VALUES ($1, $2, $3, berth_now()) ON CONFLICT DO NOTHING",
                p)
        .status();
  }

  Status Audit(std::string_view model, std::string_view action, std::string_view alias,
               std::optional<int64_t> from, std::optional<int64_t> to, std::string_view actor,
               std::string_view reason) EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Params p;
    p.Text(actor).Text(model).Text(action).NullableText(alias).OptionalInt(from).OptionalInt(to);
    p.Text(reason);
    return Exec("INSERT INTO audit(at, actor, model, action, alias, from_version, to_version, "
                "reason) VALUES (berth_now(), $1, $2, $3, $4, $5, $6, $7)",
                p)
        .status();
  }

  StatusOr<std::vector<AuditRecord>> HistoryLocked(std::string_view model)
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Params p;
    p.Text(model);
    ASSIGN_OR_RETURN(Result r,
                     Exec("SELECT id, at, actor, action, alias, from_version, to_version, reason "
                          "FROM audit WHERE model = $1 ORDER BY id",
                          p));
    std::vector<AuditRecord> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      AuditRecord a;
      a.id = Int(r.get(), i, 0);
      a.at = Text(r.get(), i, 1);
      a.actor = Text(r.get(), i, 2);
      a.model = std::string(model);
      a.action = Text(r.get(), i, 3);
      a.alias = Text(r.get(), i, 4);
      a.from_version = OptionalInt(r.get(), i, 5);
      a.to_version = OptionalInt(r.get(), i, 6);
      a.reason = Text(r.get(), i, 7);
      out.push_back(std::move(a));
    }
    return out;
  }

  StatusOr<std::optional<int64_t>> SetAliasLocked(std::string_view model, std::string_view alias,
                                                  int64_t version, std::string_view action,
                                                  std::string_view actor, std::string_view reason,
                                                  std::string_view sticky_key = {})
      EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ASSIGN_OR_RETURN(std::optional<VersionStatus> status, StatusOf(model, version));
    if (!status) {
      return Status::NotFound("version " + std::to_string(version) + " of model '" +
                              std::string(model) + "' is not registered");
    }
    RETURN_IF_ERROR(CheckActive(model, version, *status));
    Params key;
    key.Text(model).Text(alias);
    std::optional<int64_t> previous;
    {
      ASSIGN_OR_RETURN(Result r,
                       Exec("SELECT version FROM aliases WHERE model = $1 AND alias = $2", key));
      if (PQntuples(r.get()) > 0) previous = Int(r.get(), 0, 0);
    }
    RETURN_IF_ERROR(
        Exec("DELETE FROM alias_splits WHERE model = $1 AND alias = $2", key).status());
    Params p;
    p.Text(model).Text(alias).Int(version).Text(sticky_key);
    RETURN_IF_ERROR(Exec("INSERT INTO aliases(model, alias, version, updated_at, sticky_key) "
                         "VALUES ($1, $2, $3, berth_now(), $4) "
                         "ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, "
                         "updated_at = excluded.updated_at, sticky_key = excluded.sticky_key",
                         p)
                        .status());
    RETURN_IF_ERROR(Audit(model, action, alias, previous, version, actor, reason));
    return previous;
  }

  std::mutex mu_;
  PGconn* const conn_;  // used only with mu_ held
  const std::string description_;  // postgresql://USER@HOST:PORT/DB, no password
  bool unreachable_ GUARDED_BY(mu_) = false;  // logged as such
  const std::string password_;     // as written in the URL; only for Scrub()
};

// postgresql://USER@HOST:PORT/DB from the URL's parsed parts: what messages
// name, never with the password.
// `options` is the URL as PQconninfoParse read it.
std::string Describe(PQconninfoOption* options) {
  std::string user, host, port, dbname;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view keyword = o->keyword;
    if (keyword == "user") user = o->val;
    if (keyword == "host" || (keyword == "hostaddr" && host.empty())) host = o->val;
    if (keyword == "port") port = o->val;
    if (keyword == "dbname") dbname = o->val;
  }
  std::string out = "postgresql://";
  if (!user.empty()) out += user + "@";
  out += host.empty() ? "localhost" : host;
  if (!port.empty()) out += ":" + port;
  out += "/" + dbname;
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<RegistryStore>> OpenPostgresRegistryStore(const std::string& url) {
  if (!url.starts_with("postgresql://") && !url.starts_with("postgres://")) {
    return Status::InvalidArgument("a PostgreSQL registry URL starts with postgresql:// or "
                                   "postgres://");
  }
  const std::string password = UrlPassword(url);
  const auto scrub = [&](std::string message) {
    return ScrubPassword(std::move(message), password);
  };
  std::string description;
  {
    char* error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(url.c_str(), &error);
    if (parsed == nullptr) {
      std::string message = error != nullptr ? OneLine(error) : "it cannot be parsed";
      PQfreemem(error);
      return Status::InvalidArgument("not a usable PostgreSQL URL: " + scrub(message));
    }
    description = Describe(parsed);
    PQconninfoFree(parsed);
  }
  // Defaults the URL may override (it comes last, and libpq keeps the last
  // value of a key word): give up connecting after 5 s rather than hang the
  // start-up, and notice a server that went away mid-statement (keepalives,
  // unacknowledged data) in seconds rather than the kernel's minutes.
  const char* keywords[] = {"connect_timeout", "keepalives_idle", "keepalives_interval",
                            "keepalives_count", "tcp_user_timeout", "client_encoding",
                            "application_name", "dbname", nullptr};
  const char* values[] = {"5", "10", "3", "3", "30000", "UTF8", "berth", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Status::Internal("cannot allocate a PostgreSQL connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string message = scrub(OneLine(PQerrorMessage(conn)));
    PQfinish(conn);
    return Status::Unavailable("cannot connect to the registry store " + description + ": " +
                               message);
  }
  // Notices (e.g. "relation already exists, skipping") are not errors.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  auto store = std::make_unique<PostgresRegistryStore>(conn, description, password);
  RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<RegistryStore>(std::move(store));
}

}  // namespace berth
