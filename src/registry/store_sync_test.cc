// StoreSync between two replicas of a real PostgreSQL store: each replica is
// a ModelRepository on its own directory with its own model table and its own
// connection, as two Berth processes would be.
#include "registry/store_sync.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backends/onnxruntime/onnxruntime_backend.h"
#include "registry/artifact_digest.h"
#include "registry/postgres_testing.h"

namespace berth {
namespace {

namespace fs = std::filesystem;
using ::berth::testing::TestPostgres;

const fs::path kData = BERTH_TEST_DATA_DIR;

std::string ReadAll(const fs::path& path) {
  auto bytes = ReadFileBytes(path);
  return bytes.ok() ? *bytes : std::string();
}

// One Berth process's share of the registry: a store connection, a model
// table and a repository on its own directory.
struct Replica {
  Replica(const std::string& url, fs::path root, BackendFactory* factory) : root(std::move(root)) {
    auto opened = OpenPostgresRegistryStore(url);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (opened.ok()) store = std::move(opened).value();
    fs::create_directories(this->root);
    repository = std::make_unique<ModelRepository>(
        this->root, std::map<std::string, BackendFactory*>{{"onnx", factory}}, &models,
        store.get());
    sync = std::make_unique<StoreSync>(store.get(), repository.get(), &models);
  }

  fs::path root;
  std::unique_ptr<RegistryStore> store;
  ModelManager models;
  std::unique_ptr<ModelRepository> repository;
  std::unique_ptr<StoreSync> sync;
};

class StoreSyncTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { factory_ = CreateOnnxRuntimeFactory().release(); }
  static void TearDownTestSuite() {
    delete factory_;
    factory_ = nullptr;
  }

  void SetUp() override {
    TestPostgres& pg = TestPostgres::Get();
    if (!pg.skip_reason().empty()) GTEST_SKIP() << pg.skip_reason();
    ASSERT_EQ(pg.error(), "");
    const std::string url = pg.CreateDatabase();
    ASSERT_NE(url, "") << pg.error();
    std::string tmpl = (fs::temp_directory_path() / "berth_sync_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    a_ = std::make_unique<Replica>(url, dir_ / "a", factory_);
    b_ = std::make_unique<Replica>(url, dir_ / "b", factory_);
    ASSERT_NE(a_->store, nullptr);
    ASSERT_NE(b_->store, nullptr);
    artifact_ = ReadAll(kData / "add_fp32.onnx");
    ASSERT_FALSE(artifact_.empty());
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Nothing of a half-done sync is left: no staging directory anywhere.
  void ExpectNoStagingLeft(const fs::path& root) {
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
         ++it) {
      EXPECT_FALSE(it->path().filename().string().starts_with(".sync-")) << it->path();
    }
  }

  static BackendFactory* factory_;
  fs::path dir_;
  std::unique_ptr<Replica> a_;
  std::unique_ptr<Replica> b_;
  std::string artifact_;
};

BackendFactory* StoreSyncTest::factory_ = nullptr;

TEST_F(StoreSyncTest, AReplicaFetchesWhatAnotherPushedAndFollowsItsMoves) {
  ASSERT_EQ(*a_->repository->Push("add", artifact_, R"({"metrics": {"f1": 0.9}})", "alice", false), 1);
  ASSERT_EQ(*a_->repository->Push("add", artifact_, "", "alice", false), 2);

  auto acted = b_->sync->SyncOnce();
  ASSERT_TRUE(acted.ok()) << acted.status().ToString();
  EXPECT_EQ(*acted, 1);
  // Written as a push writes it: artifact, record, and the model's config.
  for (int v : {1, 2}) {
    EXPECT_EQ(ReadAll(b_->root / "add" / std::to_string(v) / "model.onnx"), artifact_);
  }
  EXPECT_EQ(ReadAll(b_->root / "add" / "config.yaml"), ReadAll(a_->root / "add" / "config.yaml"));
  EXPECT_THAT(ReadAll(b_->root / "add" / "1" / kVersionRecordFile),
              ::testing::HasSubstr(R"("metadata":{"metrics":{"f1":0.9}})"));
  ExpectNoStagingLeft(b_->root);
  auto entry = b_->models.Find("add");
  ASSERT_TRUE(entry.has_value());
  ASSERT_NE(entry->Default(), nullptr);
  EXPECT_EQ(entry->Default()->version, 2);
  EXPECT_EQ(entry->Default()->state, ModelState::kReady);

  // Nothing changed: nothing to do.
  EXPECT_EQ(*b_->sync->SyncOnce(), 0);

  AliasChange change;
  change.actor = "alice";
  std::optional<int64_t> previous;
  ASSERT_TRUE(a_->repository->Promote("add", 1, change, &previous).ok());
  EXPECT_EQ(*b_->sync->SyncOnce(), 1);
  entry = b_->models.Find("add");
  EXPECT_EQ(entry->aliases.at("production"), 1);
  EXPECT_EQ(entry->Default()->version, 1);
  EXPECT_EQ(entry->Default()->state, ModelState::kReady);

  ASSERT_TRUE(a_->repository->SetShadow("add", 2, 25, change, &previous).ok());
  EXPECT_EQ(*b_->sync->SyncOnce(), 1);
  EXPECT_EQ(b_->models.Find("add")->shadow, (ShadowTarget{2, 25}));

  // A's own sync finds what it published already in place.
  EXPECT_EQ(*a_->sync->SyncOnce(), 0);
}

TEST_F(StoreSyncTest, PushesFromBothReplicasTakeDistinctNumbers) {
  ASSERT_EQ(*a_->repository->Push("add", artifact_, "", "a", false), 1);
  // B has not synced: its own directory knows no version, the store does.
  auto pushed = b_->repository->Push("add", artifact_, "", "b", false);
  ASSERT_TRUE(pushed.ok()) << pushed.status().ToString();
  EXPECT_EQ(*pushed, 2);
  ASSERT_TRUE(a_->sync->SyncOnce().ok());
  ASSERT_TRUE(b_->sync->SyncOnce().ok());
  for (Replica* r : {a_.get(), b_.get()}) {
    EXPECT_TRUE(fs::is_regular_file(r->root / "add" / "1" / "model.onnx")) << r->root;
    EXPECT_TRUE(fs::is_regular_file(r->root / "add" / "2" / "model.onnx")) << r->root;
  }
  EXPECT_EQ(a_->store->Versions("add")->size(), 2u);
}

TEST_F(StoreSyncTest, PushesRacingFromTwoReplicasAllLandUnderDistinctNumbers) {
  ASSERT_EQ(*a_->repository->Push("add", artifact_, "", "a", false), 1);
  ASSERT_EQ(*b_->sync->SyncOnce(), 1);
  // Each replica picks the next number from what it has seen; when the
  // other took it meanwhile, the store refuses it and the next is tried.
  constexpr int kPushes = 6;
  std::vector<int64_t> numbers[2];
  const auto pusher = [&](Replica* r, std::vector<int64_t>* out) {
    for (int i = 0; i < kPushes; ++i) {
      auto v = r->repository->Push("add", artifact_, "", "t", false);
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      out->push_back(*v);
    }
  };
  std::thread ta(pusher, a_.get(), &numbers[0]);
  std::thread tb(pusher, b_.get(), &numbers[1]);
  ta.join();
  tb.join();
  std::vector<int64_t> all = {1};
  for (const auto& n : numbers) all.insert(all.end(), n.begin(), n.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "a number was used twice";
  auto stored = a_->store->Versions("add");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), all.size());
  // Each replica has its own pushes on disk, and the other's after a pass.
  for (Replica* r : {a_.get(), b_.get()}) {
    ASSERT_TRUE(r->sync->SyncOnce().ok());
    for (int64_t v : all) {
      EXPECT_TRUE(fs::is_regular_file(r->root / "add" / std::to_string(v) / "model.onnx"))
          << r->root << " version " << v;
    }
  }
}

TEST_F(StoreSyncTest, ADirectoryModelReachesTheOtherReplicaWithItsTritonConfig) {
  // A Triton model directory dropped into A's repository.
  const std::string pbtxt = "platform: \"onnxruntime_onnx\"\nmax_batch_size: 4\n";
  fs::create_directories(a_->root / "add" / "3");
  std::ofstream(a_->root / "add" / "config.pbtxt") << pbtxt;
  fs::copy_file(kData / "add_fp32.onnx", a_->root / "add" / "3" / "model.onnx");
  ASSERT_TRUE(a_->repository->LoadAll().ok());
  ASSERT_EQ(a_->models.Find("add")->Default()->state, ModelState::kReady);

  EXPECT_EQ(*b_->sync->SyncOnce(), 1);
  EXPECT_EQ(ReadAll(b_->root / "add" / "config.pbtxt"), pbtxt);
  EXPECT_FALSE(fs::exists(b_->root / "add" / "config.yaml"));
  auto entry = b_->models.Find("add");
  ASSERT_TRUE(entry.has_value());
  ASSERT_NE(entry->Default(), nullptr);
  EXPECT_EQ(entry->Default()->version, 3);
  ASSERT_EQ(entry->Default()->state, ModelState::kReady);
  EXPECT_EQ(entry->Default()->model->config.max_batch_size, 4);
}

TEST_F(StoreSyncTest, RecordsWithoutUsableArtifactsOrNamesAreSkippedAndNothingIsWritten) {
  VersionRecord ghost;
  ghost.model = "ghost";
  ghost.version = 1;
  ghost.digest = "sha256:00";  // registered without its bytes
  ghost.format = "onnx";
  ASSERT_TRUE(a_->store->RegisterVersion(ghost, "t").ok());
  VersionRecord evil = ghost;
  evil.model = "../evil";  // a shared store's row this replica cannot hold
  ASSERT_TRUE(a_->store->RegisterVersion(evil, "t").ok());
  VersionRecord odd = ghost;
  odd.model = "odd";
  odd.format = "savedmodel";
  ASSERT_TRUE(a_->store->RegisterVersion(odd, "t").ok());

  auto acted = b_->sync->SyncOnce();
  ASSERT_TRUE(acted.ok()) << acted.status().ToString();
  EXPECT_EQ(*acted, 0);
  EXPECT_TRUE(fs::is_empty(b_->root));
  EXPECT_FALSE(fs::exists(dir_ / "evil"));
  EXPECT_FALSE(b_->models.Find("ghost").has_value());
  // Skipped for good: a later pass does not fetch again, and still succeeds.
  ASSERT_TRUE(a_->repository->Push("add", artifact_, "", "a", false).ok());
  EXPECT_EQ(*b_->sync->SyncOnce(), 1);
  EXPECT_TRUE(fs::is_regular_file(b_->root / "add" / "1" / "model.onnx"));
  EXPECT_FALSE(fs::exists(b_->root / "ghost"));
}

TEST_F(StoreSyncTest, AModelUnloadedOnRequestStaysUnloadedUntilItGetsANewVersion) {
  ASSERT_EQ(*a_->repository->Push("add", artifact_, "", "a", false), 1);
  ASSERT_EQ(*b_->sync->SyncOnce(), 1);
  ASSERT_TRUE(b_->repository->UnloadModel("add").ok());
  AliasChange change;
  std::optional<int64_t> previous;
  ASSERT_TRUE(a_->repository->Promote("add", 1, change, &previous).ok());
  EXPECT_EQ(*b_->sync->SyncOnce(), 0);
  EXPECT_FALSE(b_->models.Find("add").has_value());
  ASSERT_EQ(*a_->repository->Push("add", artifact_, "", "a", false), 2);
  EXPECT_EQ(*b_->sync->SyncOnce(), 1);
  EXPECT_TRUE(b_->models.Find("add").has_value());
}

}  // namespace
}  // namespace berth
