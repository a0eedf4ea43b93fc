#include "core/model_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/scheduler.h"  // Model owns a unique_ptr<Scheduler>

namespace berth {
namespace {

std::shared_ptr<const Model> MakeModel(const std::string& name, int64_t version) {
  auto m = std::make_shared<Model>();
  m->name = name;
  m->version = version;
  return m;
}

VersionEntry Ready(const std::string& name, int64_t version) {
  VersionEntry v;
  v.version = version;
  v.state = ModelState::kReady;
  v.model = MakeModel(name, version);
  return v;
}

VersionEntry NotReady(int64_t version, ModelState state, std::string reason) {
  VersionEntry v;
  v.version = version;
  v.state = state;
  v.reason = std::move(reason);
  return v;
}

ModelEntry Entry(const std::string& name, std::vector<VersionEntry> versions,
                 std::string reason = "") {
  ModelEntry e;
  e.name = name;
  e.reason = std::move(reason);
  e.versions = std::move(versions);
  return e;
}

TEST(ModelEntryTest, LatestReadySkipsVersionsNotReady) {
  ModelEntry e = Entry("m", {Ready("m", 1), Ready("m", 2),
                             NotReady(3, ModelState::kUnavailable, "corrupt")});
  ASSERT_NE(e.LatestReady(), nullptr);
  EXPECT_EQ(e.LatestReady()->version, 2);
  EXPECT_EQ(Entry("m", {NotReady(1, ModelState::kLoading, "")}).LatestReady(), nullptr);
  EXPECT_EQ(Entry("m", {}).LatestReady(), nullptr);
}

TEST(ModelManagerTest, UnknownModelIsNotFound) {
  ModelManager manager;
  auto got = manager.Get("nope", "");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(got.status().message(), "model 'nope' is not in the repository");
  EXPECT_EQ(manager.Get("nope", "1").status().code(), Status::Code::kNotFound);
}

TEST(ModelManagerTest, EmptyVersionIsLatestReady) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1), Ready("m", 2),
                          NotReady(3, ModelState::kUnavailable, "corrupt")}));
  auto got = manager.Get("m", "");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)->version, 2);
  EXPECT_EQ((*got)->name, "m");
}

TEST(ModelManagerTest, SpecificVersion) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1), Ready("m", 2)}));
  auto got = manager.Get("m", "1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->version, 1);
}

TEST(ModelManagerTest, NonNumericVersionIsNotFound) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1)}));
  for (const char* v : {"abc", "1a", " 1", "1.0", "+1", "0x1", "99999999999999999999"}) {
    auto got = manager.Get("m", v);
    ASSERT_FALSE(got.ok()) << v;
    EXPECT_EQ(got.status().code(), Status::Code::kNotFound) << v;
    EXPECT_EQ(got.status().message(), std::string("model 'm' has no version '") + v + "'");
  }
}

TEST(ModelManagerTest, AbsentVersionIsNotFound) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1)}));
  auto got = manager.Get("m", "9");
  EXPECT_EQ(got.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(got.status().message(), "model 'm' has no version '9'");
  EXPECT_EQ(manager.Get("m", "-1").status().code(), Status::Code::kNotFound);
}

TEST(ModelManagerTest, UnavailableVersionGivesStateAndReason) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1), NotReady(2, ModelState::kUnavailable, "bad file"),
                          NotReady(3, ModelState::kLoading, "")}));
  auto got = manager.Get("m", "2");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(got.status().message(), "version 2 of model 'm' is UNAVAILABLE: bad file");
  auto loading = manager.Get("m", "3");
  EXPECT_EQ(loading.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(loading.status().message(), "version 3 of model 'm' is LOADING");
}

TEST(ModelManagerTest, NoReadyVersionIsUnavailableWithReason) {
  ModelManager manager;
  manager.Set(Entry("bad", {}, "unknown field 'x' in model config"));
  auto got = manager.Get("bad", "");
  EXPECT_EQ(got.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(got.status().message(),
            "model 'bad' has no ready version: unknown field 'x' in model config");

  manager.Set(Entry("broken", {NotReady(1, ModelState::kUnavailable, "one"),
                               NotReady(2, ModelState::kUnavailable, "two")}));
  EXPECT_EQ(manager.Get("broken", "").status().message(),
            "model 'broken' has no ready version: two");

  manager.Set(Entry("quiet", {NotReady(1, ModelState::kLoading, "")}));
  EXPECT_EQ(manager.Get("quiet", "").status().message(), "model 'quiet' has no ready version");
}

TEST(ModelManagerTest, SetReplacesAndRemoveDeletes) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1)}));
  auto held = manager.Get("m", "");
  ASSERT_TRUE(held.ok());
  manager.Set(Entry("m", {Ready("m", 5)}));
  EXPECT_EQ((*manager.Get("m", ""))->version, 5);
  EXPECT_EQ(manager.Get("m", "1").status().code(), Status::Code::kNotFound);
  // A request that resolved version 1 before the swap still holds it.
  EXPECT_EQ((*held)->version, 1);
  EXPECT_EQ((*held)->name, "m");

  manager.Remove("m");
  EXPECT_EQ(manager.Get("m", "").status().code(), Status::Code::kNotFound);
  EXPECT_FALSE(manager.Find("m").has_value());
  manager.Remove("never-there");
}

TEST(ModelManagerTest, FindAndListAreSnapshots) {
  ModelManager manager;
  manager.Set(Entry("zeta", {Ready("zeta", 1)}));
  manager.Set(Entry("alpha", {}, "no versions"));
  auto found = manager.Find("alpha");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->reason, "no versions");
  auto all = manager.List();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "alpha");  // sorted by name
  EXPECT_EQ(all[1].name, "zeta");
  manager.Remove("zeta");
  EXPECT_EQ(all[1].versions.size(), 1u);  // the copy is unaffected
}

TEST(ModelManagerTest, ForEachReadyModelVisitsOnlyReadyVersions) {
  ModelManager manager;
  manager.Set(Entry("a", {Ready("a", 1), NotReady(2, ModelState::kUnavailable, "corrupt"),
                          Ready("a", 3)}));
  manager.Set(Entry("b", {}, "no versions"));
  manager.Set(Entry("c", {Ready("c", 7)}));
  std::vector<std::string> seen;
  manager.ForEachReadyModel([&](const Model& m) {
    seen.push_back(m.name + ":" + std::to_string(m.version));
    manager.Remove("c");  // the visit works on a snapshot, outside the lock
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a:1", "a:3", "c:7"}));
}

TEST(ModelManagerTest, ReadersSeeWholeEntriesDuringSwaps) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1), Ready("m", 2)}));
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!stop.load()) {
      auto got = manager.Get("m", "");
      // Every published entry has two READY versions whose numbers are n, n+1.
      auto entry = manager.Find("m");
      if (!got.ok() || !entry || entry->versions.size() != 2 ||
          entry->versions[1].version != entry->versions[0].version + 1) {
        ++bad;
      }
    }
  });
  for (int i = 1; i < 2000; ++i) manager.Set(Entry("m", {Ready("m", i), Ready("m", i + 1)}));
  stop = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace berth
