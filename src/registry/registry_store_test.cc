#include "registry/registry_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace berth {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

class RegistryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth_store_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    store_ = Open();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  std::unique_ptr<RegistryStore> Open() {
    auto store = OpenSqliteRegistryStore((dir_ / "registry.db").string());
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
  std::unique_ptr<RegistryStore> store_;
};

TEST_F(RegistryStoreTest, VersionsAreImmutableAndRegistrationIsIdempotent) {
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

TEST_F(RegistryStoreTest, AliasMovesAreAuditedAndSurviveReopening) {
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

TEST_F(RegistryStoreTest, ReopeningRunsNoMigrationTwice) {
  ASSERT_TRUE(store_->RegisterVersion(Version(1), "t").ok());
  for (int i = 0; i < 3; ++i) store_ = Open();
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->Versions("m")->size(), 1u);
}

TEST_F(RegistryStoreTest, AnUnwritablePathIsAClearError) {
  auto store = OpenSqliteRegistryStore((dir_ / "no" / "such" / "dir" / "registry.db").string());
  EXPECT_EQ(store.status().code(), Status::Code::kUnavailable);
}

AuditRecord Move(const char* action, std::string alias, int64_t to) {
  AuditRecord r;
  r.action = action;
  r.alias = std::move(alias);
  r.to_version = to;
  return r;
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

}  // namespace
}  // namespace berth
