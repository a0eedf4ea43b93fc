#include "registry/registry_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "registry/artifact_digest.h"
#include "registry/postgres_testing.h"
#include "registry/version_files.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
using ::berth::testing::TestPostgres;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

enum class Backend { kSqlite, kPostgres };

void PrintTo(Backend backend, std::ostream* os) {
  *os << (backend == Backend::kSqlite ? "SQLite" : "PostgreSQL");
}

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgresql";
}

// The conformance cases: every RegistryStore behaves the same, whichever
// database keeps it.
class RegistryStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth_store_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    if (GetParam() == Backend::kPostgres) {
      TestPostgres& pg = TestPostgres::Get();
      if (!pg.skip_reason().empty()) GTEST_SKIP() << pg.skip_reason();
      ASSERT_EQ(pg.error(), "");
      url_ = pg.CreateDatabase();
      ASSERT_NE(url_, "") << pg.error();
    }
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  // Another connection to the same store: a restart, or another replica.
  std::unique_ptr<RegistryStore> Open() {
    auto store = GetParam() == Backend::kSqlite
                     ? OpenSqliteRegistryStore((dir_ / "registry.db").string())
                     : OpenPostgresRegistryStore(url_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  static VersionRecord Version(int64_t v, std::string digest = "sha256:aa") {
    VersionRecord r;
    r.model = "m";
    r.version = v;
    r.digest = std::move(digest);
    r.size = 10 * v;
    r.format = "onnx";
    r.source = "directory";
    r.created_by = "test";
    return r;
  }

  fs::path dir_;
  std::string url_;
  std::unique_ptr<RegistryStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Stores, RegistryStoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

TEST_P(RegistryStoreTest, VersionsAreImmutableAndRegistrationIsIdempotent) {
  ASSERT_TRUE(store_->RegisterVersion(Version(1), "alice").ok());
  ASSERT_TRUE(store_->RegisterVersion(Version(1), "alice").ok());  // same digest: no-op
  Status other = store_->RegisterVersion(Version(1, "sha256:bb"), "alice");
  EXPECT_EQ(other.code(), Status::Code::kAlreadyExists);
  ASSERT_TRUE(store_->RegisterVersion(Version(2, "sha256:bb"), "bob").ok());
  auto versions = store_->Versions("m");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].digest, "sha256:aa");
  EXPECT_EQ((*versions)[1].size, 20);
  EXPECT_EQ((*versions)[1].metadata_json, "{}");
  EXPECT_THAT(*store_->Models(), ElementsAre("m"));
  auto history = store_->History("m");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);  // one "register" each, not one per call
  EXPECT_EQ((*history)[0].action, "register");
  EXPECT_EQ((*history)[0].actor, "alice");
}

TEST_P(RegistryStoreTest, AliasMovesAreAuditedAndSurviveReopening) {
  for (int v : {1, 2, 3}) ASSERT_TRUE(store_->RegisterVersion(Version(v), "t").ok());
  auto first = store_->SetAlias("m", "production", 1, "promote", "alice", "initial");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, std::nullopt);
  auto second = store_->SetAlias("m", "production", 3, "promote", "bob", "better F1");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, 1);
  EXPECT_EQ(store_->SetAlias("m", "production", 7, "promote", "bob", "").status().code(),
            Status::Code::kNotFound);

  store_ = Open();  // a restart
  auto aliases = store_->Aliases("m");
  ASSERT_TRUE(aliases.ok());
  ASSERT_EQ(aliases->size(), 1u);
  EXPECT_EQ((*aliases)[0].alias, "production");
  EXPECT_EQ((*aliases)[0].version, 3);
  auto history = store_->History("m");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 5u);
  const AuditRecord& last = history->back();
  EXPECT_EQ(last.action, "promote");
  EXPECT_EQ(last.actor, "bob");
  EXPECT_EQ(last.alias, "production");
  EXPECT_EQ(last.from_version, 1);
  EXPECT_EQ(last.to_version, 3);
  EXPECT_EQ(last.reason, "better F1");
  EXPECT_EQ(RollbackTarget(*history, "production"), 1);
}

TEST_P(RegistryStoreTest, ReopeningRunsNoMigrationTwice) {
  ASSERT_TRUE(store_->RegisterVersion(Version(1), "t").ok());
  for (int i = 0; i < 3; ++i) store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->Versions("m")->size(), 1u);
}

TEST_P(RegistryStoreTest, BaselinesAreKeptPerVersionAuditedAndSurviveReopening) {
  ASSERT_TRUE(store_->RegisterVersion(Version(1), "t").ok());
  ASSERT_TRUE(store_->RegisterVersion(Version(2, "sha256:bb"), "t").ok());
  EXPECT_EQ(*store_->Baseline("m", 1), std::nullopt);
  ASSERT_TRUE(store_->SetBaseline("m", 1, R"({"format": "berth-baseline/1"})", "alice", "").ok());
  ASSERT_TRUE(store_->SetBaseline("m", 1, R"({"v": 2})", "alice", "from window").ok());
  EXPECT_EQ(store_->SetBaseline("m", 9, "{}", "alice", "").code(), Status::Code::kNotFound);
  EXPECT_EQ(store_->SetBaseline("x", 1, "{}", "alice", "").code(), Status::Code::kNotFound);
  store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(*store_->Baseline("m", 1), std::optional<std::string>(R"({"v": 2})"));
  EXPECT_EQ(*store_->Baseline("m", 2), std::nullopt);
  auto history = store_->History("m");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->back().action, "baseline");
  EXPECT_EQ(history->back().to_version, 1);
  EXPECT_EQ(history->back().reason, "set: from window");
  ASSERT_TRUE(store_->SetBaseline("m", 1, "", "alice", "").ok());
  EXPECT_EQ(*store_->Baseline("m", 1), std::nullopt);
  EXPECT_EQ(store_->History("m")->back().reason, "cleared");
}

TEST_P(RegistryStoreTest, ApiKeysAreStoredListedAndRevokedNamesNeverReused) {
  ApiKeyRecord key{"0123456789ab", "ci", "00ff", std::string(64, 'a'), {"infer:iris", "read"},
                   2.5, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", ""};
  ASSERT_TRUE(store_->CreateApiKey(key).ok());
  ApiKeyRecord never{"ba9876543210", "admin-key", "01", std::string(64, 'b'), {"admin"}, 0, "",
                     "", ""};
  ASSERT_TRUE(store_->CreateApiKey(never).ok());
  // The same name, or the same id, again: refused, nothing changes.
  ApiKeyRecord same_name = never;
  same_name.id = "ffffffffffff";
  EXPECT_EQ(store_->CreateApiKey(same_name).code(), Status::Code::kAlreadyExists);
  ApiKeyRecord same_id = never;
  same_id.name = "other";
  EXPECT_EQ(store_->CreateApiKey(same_id).code(), Status::Code::kAlreadyExists);
  store_ = Open();  // survives reopening
  auto keys = store_->ApiKeys();
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  ASSERT_EQ(keys->size(), 2u);
  const ApiKeyRecord& admin = (*keys)[0];  // by name
  EXPECT_EQ(admin.name, "admin-key");
  EXPECT_EQ(admin.rate, 0);
  EXPECT_EQ(admin.expires_at, "");
  EXPECT_EQ(admin.revoked_at, "");
  EXPECT_FALSE(admin.created_at.empty());
  const ApiKeyRecord& ci = (*keys)[1];
  EXPECT_EQ(ci.id, key.id);
  EXPECT_EQ(ci.salt, key.salt);
  EXPECT_EQ(ci.hash, key.hash);
  EXPECT_EQ(ci.scopes, key.scopes);
  EXPECT_EQ(ci.rate, 2.5);
  EXPECT_EQ(ci.created_at, key.created_at);
  EXPECT_EQ(ci.expires_at, key.expires_at);
  ASSERT_TRUE(store_->RevokeApiKey("ci", "2026-06-01T00:00:00Z").ok());
  EXPECT_EQ(store_->RevokeApiKey("ci", "2026-06-02T00:00:00Z").code(),
            Status::Code::kFailedPrecondition);
  EXPECT_EQ(store_->RevokeApiKey("nobody", "2026-06-02T00:00:00Z").code(),
            Status::Code::kNotFound);
  EXPECT_EQ(store_->ApiKeys().value()[1].revoked_at, "2026-06-01T00:00:00Z");
  ApiKeyRecord reuse = key;
  reuse.id = "eeeeeeeeeeee";
  EXPECT_EQ(store_->CreateApiKey(reuse).code(), Status::Code::kAlreadyExists);
}

TEST(SqliteRegistryStoreTest, AnUnwritablePathIsAClearError) {
  auto store = OpenSqliteRegistryStore("/nonexistent/berth/no/such/dir/registry.db");
  EXPECT_EQ(store.status().code(), Status::Code::kUnavailable);
}

TEST(PostgresRegistryStoreTest, AnUnreachableServerIsAClearErrorThatHidesThePassword) {
  // Port 1 on loopback: refused at once, nothing listens there.
  auto store = OpenPostgresRegistryStore("postgresql://alice:hunter2@127.0.0.1:1/registry");
  ASSERT_EQ(store.status().code(), Status::Code::kUnavailable);
  EXPECT_THAT(store.status().message(), HasSubstr("postgresql://alice@127.0.0.1:1/registry"));
  EXPECT_THAT(store.status().message(), Not(HasSubstr("hunter2")));
}

TEST(PostgresRegistryStoreTest, OtherSchemesAndMalformedUrlsAreRefused) {
  EXPECT_EQ(OpenPostgresRegistryStore("mysql://a@h/db").status().code(),
            Status::Code::kInvalidArgument);
  auto bad = OpenPostgresRegistryStore("postgresql://alice:hunter2@127.0.0.1/db?nosuch=1");
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("nosuch"));
  EXPECT_THAT(bad.status().message(), Not(HasSubstr("hunter2")));
  // libpq reads the port only when it connects.
  auto port = OpenPostgresRegistryStore("postgresql://alice:hunter2@127.0.0.1:notaport/db");
  EXPECT_FALSE(port.ok());
  EXPECT_THAT(port.status().message(), Not(HasSubstr("hunter2")));
}

TEST_P(RegistryStoreTest, SplitsAreStoredAuditedAndEndedByAPromotion) {
  for (int v : {1, 2, 3}) ASSERT_TRUE(store_->RegisterVersion(Version(v), "t").ok());
  ASSERT_TRUE(store_->SetAlias("m", "production", 1, "promote", "a", "").ok());
  auto previous = store_->SetSplit("m", "production", {{1, 90}, {2, 10}}, "", "a", "canary", "split");
  ASSERT_TRUE(previous.ok()) << previous.status().ToString();
  EXPECT_EQ(*previous, 1);
  EXPECT_FALSE(store_->SetSplit("m", "production", {{1, 90}, {9, 10}}, "", "a", "", "split").ok());
  store_ = Open();
  auto aliases = store_->Aliases("m");
  ASSERT_EQ(aliases->size(), 1u);
  EXPECT_EQ((*aliases)[0].version, 1);  // the heaviest
  EXPECT_EQ((*aliases)[0].split, (std::vector<WeightedVersion>{{1, 90}, {2, 10}}));
  EXPECT_EQ((*aliases)[0].sticky_key, "");
  EXPECT_EQ(store_->History("m")->back().action, "split");
  EXPECT_EQ(store_->History("m")->back().reason, "1=90 2=10: canary");

  ASSERT_TRUE(store_->SetAlias("m", "production", 2, "promote", "a", "").ok());
  EXPECT_TRUE((*store_->Aliases("m"))[0].split.empty());
}

TEST_P(RegistryStoreTest, TheGenerationGrowsWithEveryChangeAndOnlyThen) {
  const int64_t start = *store_->Generation();
  ASSERT_TRUE(store_->RegisterVersion(Version(1), "t").ok());
  const int64_t registered = *store_->Generation();
  EXPECT_GT(registered, start);
  ASSERT_TRUE(store_->RegisterVersion(Version(1), "t").ok());  // a no-op
  store_->Versions("m").ok();
  store_->History("m").ok();
  EXPECT_EQ(*store_->Generation(), registered);
  ASSERT_TRUE(store_->SetAlias("m", "production", 1, "promote", "a", "").ok());
  const int64_t promoted = *store_->Generation();
  EXPECT_GT(promoted, registered);
  EXPECT_FALSE(store_->SetAlias("m", "production", 9, "promote", "a", "").ok());  // refused
  EXPECT_EQ(*store_->Generation(), promoted);
  ASSERT_TRUE(store_->SetShadow("m", 1, 10, "a", "").ok());
  // Another connection (another replica) sees the same marker.
  auto other = Open();
  EXPECT_EQ(*other->Generation(), *store_->Generation());
  EXPECT_GT(*store_->Generation(), promoted);
}

TEST_P(RegistryStoreTest, FilesGoWithTheRecordWhereTheStoreHoldsArtifacts) {
  const std::string artifact("onnx\0bytes\xff", 11);
  VersionRecord record = Version(1, Sha256Bytes(artifact).digest);
  VersionFiles files;
  files.artifact = artifact;
  files.config_name = "config.yaml";
  files.config = "max_batch_size: 4\n";
  ASSERT_TRUE(store_->RegisterVersionWithFiles(record, "t", files).ok());
  EXPECT_EQ(store_->Versions("m")->at(0).digest, record.digest);
  // A push's number must be new, whatever the bytes.
  VersionFiles again = files;
  again.new_number = true;
  EXPECT_EQ(store_->RegisterVersionWithFiles(record, "t", again).code(),
            Status::Code::kAlreadyExists);
  if (!store_->HoldsArtifacts()) {
    // SQLite: the artifacts stay in the model repository.
    EXPECT_EQ(store_->FetchArtifact(record.digest).status().code(), Status::Code::kUnimplemented);
    return;
  }
  auto other = Open();
  auto fetched = other->FetchArtifact(record.digest);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(*fetched, artifact);  // binary-safe: NUL and non-UTF-8 bytes intact
  auto config = other->FetchConfig("m");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->name, "config.yaml");
  EXPECT_EQ(config->bytes, "max_batch_size: 4\n");

  // The first config stays; the same bytes under a second version are
  // stored once and fetched by the same digest.
  files.config = "max_batch_size: 8\n";
  ASSERT_TRUE(store_->RegisterVersionWithFiles(Version(2, record.digest), "t", files).ok());
  EXPECT_EQ(other->FetchConfig("m")->bytes, "max_batch_size: 4\n");
  EXPECT_EQ(*other->FetchArtifact(record.digest), artifact);

  // Bytes that are not what the digest says are refused, and nothing stays.
  Status wrong = store_->RegisterVersionWithFiles(Version(3, "sha256:00"), "t", files);
  EXPECT_EQ(wrong.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->Versions("m")->size(), 2u);
  EXPECT_EQ(other->FetchArtifact("sha256:00").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(other->FetchConfig("nope").status().code(), Status::Code::kNotFound);
}

TEST_P(RegistryStoreTest, AVersionThatIsADirectoryKeepsEveryFileContentAddressed) {
  const std::string model_py = "from features import scale\n";
  std::string features_py = "def scale(x):\n    return 2 * x\n";
  features_py += std::string("\0\xff", 2);
  const std::string init_py = "";
  VersionRecord record = Version(1, Sha256Bytes(model_py).digest);
  record.format = "python";
  const auto size = [](const std::string& bytes) { return static_cast<int64_t>(bytes.size()); };
  record.files = {{"model.py", Sha256Bytes(model_py).digest, size(model_py)},
                  {"features.py", Sha256Bytes(features_py).digest, size(features_py)},
                  {"pkg/__init__.py", Sha256Bytes(init_py).digest, 0}};
  VersionFiles files;
  files.contents = {{"model.py", model_py}, {"features.py", features_py}, {"pkg/__init__.py", init_py}};
  files.config_name = "config.yaml";
  files.config = "backend: python\n";
  ASSERT_TRUE(store_->RegisterVersionWithFiles(record, "t", files).ok());

  // Read back, from another connection (a restart, another replica), as
  // registered: the list, each file's digest and size.
  auto other = Open();
  auto versions = other->Versions("m");
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  ASSERT_EQ(versions->size(), 1u);
  EXPECT_EQ(versions->at(0).files, record.files);
  EXPECT_EQ(versions->at(0).digest, record.digest);
  EXPECT_EQ(FilesDigest(versions->at(0).files), FilesDigest(record.files));
  if (store_->HoldsArtifacts()) {
    for (const VersionFile& f : record.files) {
      auto fetched = other->FetchArtifact(f.digest);
      ASSERT_TRUE(fetched.ok()) << f.name << ": " << fetched.status().ToString();
      EXPECT_EQ(*fetched, files.contents.at(f.name));  // binary-safe
    }
  }

  // Immutable: the same number with another model file is refused, and the
  // files registered stay.
  VersionRecord changed = record;
  changed.digest = Sha256Bytes("other").digest;
  changed.files[0].digest = changed.digest;
  VersionFiles changed_files = files;
  changed_files.contents["model.py"] = "other";
  EXPECT_EQ(store_->RegisterVersionWithFiles(changed, "t", changed_files).code(),
            Status::Code::kAlreadyExists);
  EXPECT_EQ(other->Versions("m")->at(0).files, record.files);

  // Bytes that are not their entry's digest, a name that climbs out of the
  // version's directory, a list without a file's bytes: refused, nothing
  // stored.
  VersionRecord second = record;
  second.version = 2;
  VersionFiles wrong = files;
  wrong.contents["features.py"] = "tampered";
  Status s = store_->RegisterVersionWithFiles(second, "t", wrong);
  if (store_->HoldsArtifacts()) {
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  }
  VersionRecord climbing = second;
  climbing.files[1].name = "../features.py";
  EXPECT_EQ(store_->RegisterVersionWithFiles(climbing, "t", VersionFiles{}).code(),
            Status::Code::kInvalidArgument);
  VersionFiles missing = files;
  missing.contents.erase("features.py");
  if (store_->HoldsArtifacts()) {
    EXPECT_EQ(store_->RegisterVersionWithFiles(second, "t", missing).code(),
              Status::Code::kInvalidArgument);
    EXPECT_EQ(other->FetchArtifact(Sha256Bytes("tampered").digest).status().code(),
              Status::Code::kNotFound);
  }
  // SQLite keeps the record only, so it took the version without its bytes.
  EXPECT_EQ(other->Versions("m")->size(), s.ok() ? 2u : 1u);
}

TEST_P(RegistryStoreTest, MovesFromTwoConnectionsAtOnceChainInTheAuditLog) {
  for (int v : {1, 2, 3, 4}) ASSERT_TRUE(store_->RegisterVersion(Version(v), "t").ok());
  auto other = Open();
  ASSERT_NE(other, nullptr);
  constexpr int kMoves = 15;
  const auto mover = [](RegistryStore* store, int first) {
    for (int i = 0; i < kMoves; ++i) {
      ASSERT_TRUE(store->SetAlias("m", "production", first + i % 2, "promote", "t", "").ok());
    }
  };
  std::thread a(mover, store_.get(), 1);
  std::thread b(mover, other.get(), 3);
  a.join();
  b.join();
  // Each move's "from" is the previous move's "to": the read of the current
  // version and the write were one serialised step in each store.
  std::optional<int64_t> last;
  int moves = 0;
  auto history = store_->History("m");
  ASSERT_TRUE(history.ok());
  for (const AuditRecord& r : *history) {
    if (r.action != "promote") continue;
    EXPECT_EQ(r.from_version, last) << "audit record " << r.id;
    last = r.to_version;
    ++moves;
  }
  EXPECT_EQ(moves, 2 * kMoves);
  EXPECT_EQ((*store_->Aliases("m"))[0].version, last);
}

TEST_P(RegistryStoreTest, ReplicasOpeningANewStoreAtOnceMigrateItOnce) {
  // A fresh store (another file or database) opened by four at once.
  store_.reset();
  if (GetParam() == Backend::kSqlite) {
    dir_ /= "fresh";
    fs::create_directories(dir_);
  } else {
    url_ = TestPostgres::Get().CreateDatabase();
    ASSERT_NE(url_, "");
  }
  std::unique_ptr<RegistryStore> opened[4];
  std::vector<std::thread> threads;
  for (auto& slot : opened) threads.emplace_back([&slot, this] { slot = Open(); });
  for (auto& t : threads) t.join();
  for (auto& store : opened) {
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(store->RegisterVersion(Version(1), "t").ok());
  }
  EXPECT_EQ(opened[0]->Versions("m")->size(), 1u);
}

TEST_P(RegistryStoreTest, ARollbackThatRacedAnotherMoveIsRefused) {
  for (int v : {1, 2, 3}) ASSERT_TRUE(store_->RegisterVersion(Version(v), "t").ok());
  ASSERT_TRUE(store_->SetAlias("m", "production", 1, "promote", "a", "").ok());
  ASSERT_TRUE(store_->SetAlias("m", "production", 2, "promote", "a", "").ok());
  // Both replicas read the history and chose version 1; the first wins.
  auto other = Open();
  ASSERT_TRUE(store_->SetAlias("m", "production", 1, "rollback", "a", "").ok());
  auto late = other->SetAlias("m", "production", 1, "rollback", "b", "");
  EXPECT_EQ(late.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(late.status().message(), HasSubstr("moved by another writer meanwhile"));
  EXPECT_EQ((*store_->Aliases("m"))[0].version, 1);
  EXPECT_EQ(store_->History("m")->back().actor, "a");
}

TEST_P(RegistryStoreTest, TextIsKeptExactlyOrRefusedNeverCut) {
  ASSERT_TRUE(store_->RegisterVersion(Version(1), "t").ok());
  const std::string reason = "r\xc3\xa9sum\xc3\xa9 \"quoted\" 'single' \\ back";
  ASSERT_TRUE(store_->SetAlias("m", "production", 1, "promote", "actor \xe2\x9c\x93", reason).ok());
  EXPECT_EQ(store_->History("m")->back().reason, reason);
  EXPECT_EQ(store_->History("m")->back().actor, "actor \xe2\x9c\x93");
  // A NUL byte: SQLite keeps it whole; PostgreSQL's text cannot hold one and
  // refuses it. Neither stores "a" alone.
  auto with_nul = store_->SetAlias("m", "production", 1, "promote", "t", std::string("a\0b", 3));
  if (with_nul.ok()) {
    EXPECT_EQ(store_->History("m")->back().reason, std::string("a\0b", 3));
  } else {
    EXPECT_EQ(with_nul.status().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(store_->History("m")->back().reason, reason);
  }
}

TEST_P(RegistryStoreTest, ASplitsStickyKeyIsStoredAuditedAndEndedWithIt) {
  for (int v : {1, 2}) ASSERT_TRUE(store_->RegisterVersion(Version(v), "t").ok());
  ASSERT_TRUE(store_->SetSplit("m", "production", {{1, 90}, {2, 10}}, "x-user-id", "a", "", "split").ok());
  EXPECT_EQ(store_->SetSplit("m", "production", {{1, 90}, {2, 10}}, "X-User", "a", "", "split")
                .status()
                .code(),
            Status::Code::kInvalidArgument);  // lower-case only, as ValidateStickyKey returns it
  store_ = Open();
  EXPECT_EQ((*store_->Aliases("m"))[0].sticky_key, "x-user-id");
  EXPECT_EQ(store_->History("m")->back().reason, "1=90 2=10 sticky-key=x-user-id");
  ASSERT_TRUE(store_->SetAlias("m", "production", 2, "promote", "a", "").ok());
  EXPECT_EQ((*store_->Aliases("m"))[0].sticky_key, "");
}

TEST_P(RegistryStoreTest, ArchiveRestoreAndDeleteAreAuditedAndRefusedForVersionsInUse) {
  for (int v : {1, 2, 3, 4}) ASSERT_TRUE(store_->RegisterVersion(Version(v), "t").ok());
  ASSERT_TRUE(store_->SetAlias("m", "production", 1, "promote", "a", "").ok());
  ASSERT_TRUE(store_->SetSplit("m", "canary", {{1, 90}, {2, 10}}, "", "a", "", "split").ok());
  ASSERT_TRUE(store_->SetShadow("m", 3, 10, "a", "").ok());
  const auto code = [&](int64_t v, VersionStatus to) {
    return store_->SetVersionStatus("m", v, to, "carol", "why").code();
  };
  // In use: the error names the alias (or the shadow).
  Status used = store_->SetVersionStatus("m", 1, VersionStatus::kArchived, "carol", "");
  EXPECT_EQ(used.code(), Status::Code::kAborted);
  EXPECT_NE(used.message().find("'canary', 'production'"), std::string::npos) << used.message();
  Status split = store_->SetVersionStatus("m", 2, VersionStatus::kDeleted, "carol", "");
  EXPECT_EQ(split.code(), Status::Code::kAborted);
  EXPECT_NE(split.message().find("'canary'"), std::string::npos) << split.message();
  EXPECT_EQ(code(3, VersionStatus::kArchived), Status::Code::kAborted);  // the shadow
  EXPECT_EQ(code(9, VersionStatus::kArchived), Status::Code::kNotFound);
  // Only the moves the lifecycle allows.
  EXPECT_EQ(code(4, VersionStatus::kActive), Status::Code::kAborted);  // not archived
  EXPECT_EQ(code(4, VersionStatus::kArchived), Status::Code::kOk);
  EXPECT_EQ(code(4, VersionStatus::kArchived), Status::Code::kAborted);  // already
  // An archived version is never an alias's, a split's or the shadow's.
  EXPECT_EQ(store_->SetAlias("m", "production", 4, "promote", "a", "").status().code(),
            Status::Code::kAborted);
  EXPECT_EQ(store_->SetSplit("m", "canary", {{1, 50}, {4, 50}}, "", "a", "", "split").status().code(),
            Status::Code::kAborted);
  EXPECT_EQ(store_->SetShadow("m", 4, 10, "a", "").status().code(), Status::Code::kAborted);
  EXPECT_EQ(code(4, VersionStatus::kActive), Status::Code::kOk);
  ASSERT_TRUE(store_->SetShadow("m", 3, 0, "a", "").ok());
  EXPECT_EQ(code(3, VersionStatus::kDeleted), Status::Code::kOk);
  EXPECT_EQ(code(3, VersionStatus::kActive), Status::Code::kAborted);   // never back
  EXPECT_EQ(code(3, VersionStatus::kDeleted), Status::Code::kAborted);  // already
  // The tombstone keeps its number: the same number with another artifact
  // is still refused.
  EXPECT_EQ(store_->RegisterVersion(Version(3, "sha256:cc"), "t").code(),
            Status::Code::kAlreadyExists);

  store_ = Open();
  auto versions = store_->Versions("m");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 4u);
  EXPECT_EQ((*versions)[2].status, VersionStatus::kDeleted);
  EXPECT_EQ((*versions)[3].status, VersionStatus::kActive);
  std::vector<std::string> actions;
  auto history = store_->History("m");
  ASSERT_TRUE(history.ok());
  for (const AuditRecord& r : *history) {
    if (r.action == "archive" || r.action == "restore" || r.action == "delete") {
      actions.push_back(r.action + " " + std::to_string(*r.to_version) + " " + r.actor + " " +
                        r.reason);
      EXPECT_EQ(r.alias, "");
    }
  }
  EXPECT_THAT(actions,
              ElementsAre("archive 4 carol why", "restore 4 carol why", "delete 3 carol why"));
}

AuditRecord Move(const char* action, std::string alias, int64_t to) {
  AuditRecord r;
  r.action = action;
  r.alias = std::move(alias);
  r.to_version = to;
  return r;
}

TEST_P(RegistryStoreTest, EvaluationsAccumulateBesideAnImmutableVersionAndAreAudited) {
  ASSERT_TRUE(store_->RegisterVersion(Version(1), "alice").ok());
  ASSERT_TRUE(store_->RegisterVersion(Version(2, "sha256:bb"), "alice").ok());
  ASSERT_TRUE(store_->AddEvaluation("m", 1, R"({"metrics":{"f1":0.9}})", "bob").ok());
  ASSERT_TRUE(store_->AddEvaluation("m", 2, R"({"metrics":{"f1":0.8}})", "carol").ok());
  ASSERT_TRUE(store_->AddEvaluation("m", 1, R"({"metrics":{"f1":0.7},"rows":5})", "dan").ok());
  EXPECT_EQ(store_->AddEvaluation("m", 3, R"({"metrics":{}})", "eve").code(),
            Status::Code::kNotFound);
  ASSERT_TRUE(store_->SetVersionStatus("m", 2, VersionStatus::kDeleted, "alice", "").ok());
  EXPECT_EQ(store_->AddEvaluation("m", 2, R"({"metrics":{}})", "eve").code(),
            Status::Code::kNotFound);

  auto reopened = Open();
  ASSERT_NE(reopened, nullptr);
  auto evaluations = reopened->Evaluations("m");
  ASSERT_TRUE(evaluations.ok()) << evaluations.status().ToString();
  ASSERT_EQ(evaluations->size(), 3u);
  EXPECT_EQ((*evaluations)[0].version, 1);
  EXPECT_EQ((*evaluations)[0].actor, "bob");
  EXPECT_EQ((*evaluations)[1].version, 2);
  EXPECT_EQ((*evaluations)[2].evaluation_json, R"({"metrics":{"f1":0.7},"rows":5})");
  EXPECT_LT((*evaluations)[0].id, (*evaluations)[2].id);
  EXPECT_TRUE(reopened->Evaluations("other")->empty());
  // The version's own record is untouched.
  EXPECT_EQ((*reopened->Versions("m"))[0].metadata_json, "{}");
  int evaluate_records = 0;
  const auto history = reopened->History("m");
  ASSERT_TRUE(history.ok());
  for (const AuditRecord& r : *history) {
    if (r.action == "evaluate") {
      ++evaluate_records;
      EXPECT_FALSE(r.alias.size());
    }
  }
  EXPECT_EQ(evaluate_records, 3);
}

TEST_P(RegistryStoreTest, ASignatureIsRecordedOnceAndNeverRewritten) {
  ASSERT_TRUE(store_->RegisterVersion(Version(1), "alice").ok());
  EXPECT_EQ((*store_->Versions("m"))[0].signature_json, "");
  const int64_t generation = *store_->Generation();
  ASSERT_TRUE(store_->RecordSignature("m", 1, R"({"inputs":[],"outputs":[]})").ok());
  ASSERT_TRUE(store_->RecordSignature("m", 1, R"({"other":1})").ok());  // no-op
  EXPECT_EQ(store_->RecordSignature("m", 2, "{}").code(), Status::Code::kNotFound);
  auto reopened = Open();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ((*reopened->Versions("m"))[0].signature_json, R"({"inputs":[],"outputs":[]})");
  EXPECT_EQ(*reopened->Generation(), generation);  // not a change replicas must follow
}

TEST_P(RegistryStoreTest, ARollbackAfterASplitRestoresTheStateBeforeIt) {
  for (int v : {1, 2, 3}) ASSERT_TRUE(store_->RegisterVersion(Version(v), "t").ok());
  ASSERT_TRUE(store_->SetAlias("m", "production", 2, "promote", "a", "").ok());
  ASSERT_TRUE(store_->SetSplit("m", "production", {{2, 90}, {3, 10}}, "x-user", "a", "canary",
                               "split")
                  .ok());
  // Back to version 2 alone, not to the split's heaviest version's past.
  std::optional<AliasState> target = RollbackState(*store_->History("m"), "production");
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(*target, (AliasState{2, {}, {}}));
  ASSERT_TRUE(store_->SetAlias("m", "production", 2, "rollback", "a", "bad canary").ok());
  auto aliases = store_->Aliases("m");
  ASSERT_EQ(aliases->size(), 1u);
  EXPECT_EQ((*aliases)[0].version, 2);
  EXPECT_TRUE((*aliases)[0].split.empty());
  EXPECT_EQ(RollbackState(*store_->History("m"), "production"), std::nullopt);

  // A rollback to a split brings the whole split back, sticky key too.
  ASSERT_TRUE(store_->SetSplit("m", "production", {{2, 90}, {3, 10}}, "x-user", "a", "", "split")
                  .ok());
  ASSERT_TRUE(store_->SetAlias("m", "production", 1, "promote", "a", "").ok());
  target = RollbackState(*store_->History("m"), "production");
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(*target, (AliasState{2, {{2, 90}, {3, 10}}, "x-user"}));
  // The store refuses a rollback to anything else: a version alone, or
  // another split.
  EXPECT_EQ(store_->SetAlias("m", "production", 2, "rollback", "a", "").status().code(),
            Status::Code::kFailedPrecondition);
  EXPECT_EQ(store_->SetSplit("m", "production", {{2, 80}, {3, 20}}, "x-user", "a", "", "rollback")
                .status()
                .code(),
            Status::Code::kFailedPrecondition);
  auto back = store_->SetSplit("m", "production", target->split, target->sticky_key, "a", "why",
                               "rollback");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, 1);
  store_ = Open();  // a restart
  aliases = store_->Aliases("m");
  EXPECT_EQ((*aliases)[0].version, 2);
  EXPECT_EQ((*aliases)[0].split, (std::vector<WeightedVersion>{{2, 90}, {3, 10}}));
  EXPECT_EQ((*aliases)[0].sticky_key, "x-user");
  const AuditRecord last = store_->History("m")->back();
  EXPECT_EQ(last.action, "rollback");
  EXPECT_EQ(last.reason, "2=90 3=10 sticky-key=x-user: why");
  // And one more rollback goes to version 2 alone, before the split.
  EXPECT_EQ(RollbackState(*store_->History("m"), "production"), (AliasState{2, {}, {}}));
}

TEST(RollbackStateTest, SplitsAreStatesOfTheirOwn) {
  const auto split = [](const char* action, int64_t to, std::string reason) {
    AuditRecord r = Move(action, "production", to);
    r.reason = std::move(reason);
    return r;
  };
  std::vector<AuditRecord> h = {Move("promote", "production", 2),
                                split("split", 2, "2=90 3=10: canary")};
  EXPECT_EQ(RollbackState(h, "production"), (AliasState{2, {}, {}}));
  // Another split of the same heaviest version is a move too.
  h.push_back(split("split", 2, "2=50 3=50"));
  EXPECT_EQ(RollbackState(h, "production"), (AliasState{2, {{2, 90}, {3, 10}}, {}}));
  // The same split again is not.
  h.push_back(split("split", 2, "2=50 3=50: again"));
  EXPECT_EQ(RollbackState(h, "production"), (AliasState{2, {{2, 90}, {3, 10}}, {}}));
  // A sticky key naming an input (a colon inside) and a reason after it.
  h = {Move("promote", "production", 1), split("split", 4, "3=1 4=2 sticky-key=input:id:: x")};
  h.push_back(Move("promote", "production", 5));
  EXPECT_EQ(RollbackState(h, "production"), (AliasState{4, {{3, 1}, {4, 2}}, "input:id:"}));
  // A promotion's reason that looks like a split is only a reason.
  h = {Move("promote", "production", 1), split("promote", 2, "1=1 2=5")};
  h.push_back(Move("promote", "production", 3));
  EXPECT_EQ(RollbackState(h, "production"), (AliasState{2, {}, {}}));
}

TEST(RollbackTargetTest, PromotionsPushAndRollbacksPop) {
  EXPECT_EQ(RollbackTarget({}, "production"), std::nullopt);
  EXPECT_EQ(RollbackTarget({Move("promote", "production", 1)}, "production"), std::nullopt);
  std::vector<AuditRecord> h = {Move("promote", "production", 1), Move("promote", "production", 2),
                                Move("promote", "staging", 9), Move("promote", "production", 3)};
  EXPECT_EQ(RollbackTarget(h, "production"), 2);
  EXPECT_EQ(RollbackTarget(h, "staging"), std::nullopt);
  h.push_back(Move("rollback", "production", 2));
  EXPECT_EQ(RollbackTarget(h, "production"), 1);  // a second rollback goes further back
  h.push_back(Move("rollback", "production", 1));
  EXPECT_EQ(RollbackTarget(h, "production"), std::nullopt);
  h.push_back(Move("promote", "production", 4));
  EXPECT_EQ(RollbackTarget(h, "production"), 1);
  // Promoting the version already there changes nothing to go back to.
  h.push_back(Move("promote", "production", 4));
  EXPECT_EQ(RollbackTarget(h, "production"), 1);
}

TEST(AliasNameTest, LettersDigitsDashUnderscoreStartingWithALetter) {
  for (const char* ok : {"production", "staging", "canary-2", "a", "ab_c"}) {
    EXPECT_TRUE(ValidateAliasName(ok).ok()) << ok;
  }
  for (const char* bad : {"", "Production", "1", "-x", "_x", "a b", "a/b", "a.b"}) {
    EXPECT_EQ(ValidateAliasName(bad).code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ValidateAliasName(std::string(65, 'a')).ok());
}

TEST(StickyKeyTest, HeaderNamesGrpcCanCarryLowerCased) {
  EXPECT_EQ(*ValidateStickyKey("X-User-Id"), "x-user-id");
  EXPECT_EQ(*ValidateStickyKey("session_id.v2"), "session_id.v2");
  for (const char* bad : {"", "a b", "a:b", "x\n", "grpc-timeout", "x-bin", "caf\xc3\xa9"}) {
    EXPECT_EQ(ValidateStickyKey(bad).status().code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ValidateStickyKey(std::string(65, 'a')).ok());
}

TEST(StickyKeyTest, AnInputsNameKeepsItsSpelling) {
  EXPECT_EQ(*ValidateStickyKey("input:User_ID"), "input:User_ID");
  EXPECT_EQ(*ValidateStickyKey("INPUT:x/0:1"), "input:x/0:1");
  for (const char* bad : {"input:", "input:a b", "input:\x7f", "input:caf\xc3\xa9"}) {
    EXPECT_EQ(ValidateStickyKey(bad).status().code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(ValidateStickyKey("input:" + std::string(128, 'a')).ok());
  EXPECT_FALSE(ValidateStickyKey("input:" + std::string(129, 'a')).ok());
}

}  // namespace
}  // namespace berth

namespace berth {
namespace {

TEST_P(RegistryStoreTest, PredictionsAreJoinedOnceCountedAndExpired) {
  std::vector<PredictionRecord> records;
  for (int64_t row = 0; row < 3; ++row) {
    records.push_back({"m", "req-1", row, 1, 1000 + row, std::to_string(row % 2),
                       row == 0 ? std::optional<double>() : std::optional<double>(0.25 * row)});
  }
  records.push_back({"m", "old", 0, 2, 10, "1", std::nullopt});
  records.push_back({"other", "req-1", 0, 1, 1000, "x", std::nullopt});
  ASSERT_TRUE(store_->SavePredictions(records).ok());
  // A kept key is kept as it was: an id names its first prediction.
  ASSERT_TRUE(store_->SavePredictions({{"m", "req-1", 0, 1, 5000, "9", 0.5}}).ok());

  std::vector<FeedbackItem> items = {{"req-1", 0, "0"}, {"req-1", 1, "0"}, {"req-1", 0, "1"},
                                     {"nope", 0, "1"},  {"old", 0, "1"},   {"req-1", 7, "1"}};
  auto joined = store_->JoinFeedback("m", std::nullopt, items, 2000, 100);
  ASSERT_TRUE(joined.ok()) << joined.status().ToString();
  std::vector<FeedbackOutcome> outcomes;
  for (const auto& [o, j] : *joined) outcomes.push_back(o);
  EXPECT_THAT(outcomes, ElementsAre(FeedbackOutcome::kJoined, FeedbackOutcome::kJoined,
                                    FeedbackOutcome::kDuplicate, FeedbackOutcome::kUnknown,
                                    FeedbackOutcome::kLate, FeedbackOutcome::kUnknown));
  const JoinedPrediction& first = (*joined)[0].second;
  EXPECT_EQ(first.version, 1);
  EXPECT_EQ(first.created_ms, 1000);
  EXPECT_EQ(first.labeled_ms, 2000);
  EXPECT_EQ(first.predicted, "0");
  EXPECT_FALSE(first.score.has_value());
  EXPECT_EQ((*joined)[1].second.score, std::optional<double>(0.25));
  // The version's route counts another version's prediction as unknown.
  auto by_version = store_->JoinFeedback("m", 2, {{"req-1", 2, "1"}}, 3000, 100);
  ASSERT_TRUE(by_version.ok());
  EXPECT_EQ((*by_version)[0].first, FeedbackOutcome::kUnknown);

  // Reopened (a restart), newest truth first.
  store_ = Open();
  ASSERT_TRUE(store_->JoinFeedback("m", 1, {{"req-1", 2, "1"}}, 3000, 100).ok());
  auto window = store_->JoinedPredictions("m", 1, 10);
  ASSERT_TRUE(window.ok()) << window.status().ToString();
  ASSERT_EQ(window->size(), 3u);
  EXPECT_EQ((*window)[0].labeled_ms, 3000);
  EXPECT_EQ((*window)[0].truth, "1");
  EXPECT_EQ((*window)[0].score, std::optional<double>(0.5));
  EXPECT_EQ(store_->JoinedPredictions("m", 1, 1)->size(), 1u);

  // Past the retention: the rows lose their prediction and truth but keep
  // their key (late); later the key goes too (unknown).
  ASSERT_TRUE(store_->ExpirePredictions("m", 1002, 0, 1000).ok());
  EXPECT_EQ(store_->JoinedPredictions("m", 1, 10)->size(), 1u);  // row 2, made at 1002
  auto late = store_->JoinFeedback("m", std::nullopt, {{"req-1", 1, "1"}}, 4000, 0);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ((*late)[0].first, FeedbackOutcome::kLate);
  ASSERT_TRUE(store_->ExpirePredictions("m", 1002, 1002, 1000).ok());
  late = store_->JoinFeedback("m", std::nullopt, {{"req-1", 1, "1"}}, 4000, 0);
  EXPECT_EQ((*late)[0].first, FeedbackOutcome::kUnknown);
  // The cap keeps the newest rows of the model; other models are untouched.
  ASSERT_TRUE(store_->SavePredictions({{"m", "new", 0, 1, 9000, "1", std::nullopt}}).ok());
  ASSERT_TRUE(store_->ExpirePredictions("m", 0, 0, 1).ok());
  auto outcomes_after = store_->JoinFeedback(
      "m", std::nullopt, {{"req-1", 2, "1"}, {"new", 0, "1"}}, 9500, 0);
  ASSERT_TRUE(outcomes_after.ok());
  EXPECT_EQ((*outcomes_after)[0].first, FeedbackOutcome::kUnknown);
  EXPECT_EQ((*outcomes_after)[1].first, FeedbackOutcome::kJoined);
  auto other = store_->JoinFeedback("other", std::nullopt, {{"req-1", 0, "x"}}, 9500, 0);
  EXPECT_EQ((*other)[0].first, FeedbackOutcome::kJoined);
}

}  // namespace
}  // namespace berth
