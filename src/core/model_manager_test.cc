#include "core/model_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor_testing.h"

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
  auto got = manager.Resolve("nope", "");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(got.status().message(), "Request for unknown model: 'nope' is not found (model 'nope' is not in the repository)");
  EXPECT_EQ(manager.Resolve("nope", "1").status().code(), Status::Code::kNotFound);
}

TEST(ModelManagerTest, EmptyVersionIsLatestReady) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1), Ready("m", 2),
                          NotReady(3, ModelState::kUnavailable, "corrupt")}));
  auto got = manager.Resolve("m", "");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)->version, 2);
  EXPECT_EQ((*got)->name, "m");
}

TEST(ModelManagerTest, SpecificVersion) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1), Ready("m", 2)}));
  auto got = manager.Resolve("m", "1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->version, 1);
}

TEST(ModelManagerTest, MalformedVersionIsInvalidArgument) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1)}));
  for (const char* v :
       {"1a", " 1", "1.0", "+1", "0x1", "01", "001", "0", "-1", "99999999999999999999", "_x"}) {
    auto got = manager.Resolve("m", v);
    ASSERT_FALSE(got.ok()) << v;
    EXPECT_EQ(got.status().code(), Status::Code::kInvalidArgument) << v;
    EXPECT_EQ(got.status().message(),
              std::string("version '") + v +
                  "' is not a version number: versions are positive integers written without "
                  "sign or leading zeros");
  }
}

TEST(ModelManagerTest, MalformedNameIsInvalidArgumentAndCreatesNothing) {
  ModelManager manager;
  manager.Set(Entry("lin", {Ready("lin", 1)}));
  using namespace std::string_literals;
  for (const std::string& name : {"lin\0"s, "lin\0x"s, std::string(300, 'a'), "a\nb"s}) {
    EXPECT_EQ(manager.Resolve(name, "").status().code(), Status::Code::kInvalidArgument);
  }
  EXPECT_EQ(manager.List().size(), 1u);
}

TEST(ModelManagerTest, AbsentVersionIsNotFound) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1)}));
  auto got = manager.Resolve("m", "9");
  EXPECT_EQ(got.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(got.status().message(), "Request for unknown model: 'm' version 9 is not found (model 'm' has no version '9')");
}

TEST(ModelManagerTest, UnavailableVersionGivesStateAndReason) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1), NotReady(2, ModelState::kUnavailable, "bad file"),
                          NotReady(3, ModelState::kLoading, "")}));
  auto got = manager.Resolve("m", "2");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(got.status().message(), "version 2 of model 'm' is UNAVAILABLE: bad file");
  auto loading = manager.Resolve("m", "3");
  EXPECT_EQ(loading.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(loading.status().message(), "version 3 of model 'm' is LOADING");
}

TEST(ModelManagerTest, NoReadyVersionIsUnavailableWithReason) {
  ModelManager manager;
  manager.Set(Entry("bad", {}, "unknown field 'x' in model config"));
  auto got = manager.Resolve("bad", "");
  EXPECT_EQ(got.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(got.status().message(),
            "model 'bad' has no ready version: unknown field 'x' in model config");

  manager.Set(Entry("broken", {NotReady(1, ModelState::kUnavailable, "one"),
                               NotReady(2, ModelState::kUnavailable, "two")}));
  EXPECT_EQ(manager.Resolve("broken", "").status().message(),
            "model 'broken' has no ready version: two");

  manager.Set(Entry("quiet", {NotReady(1, ModelState::kLoading, "")}));
  EXPECT_EQ(manager.Resolve("quiet", "").status().message(), "model 'quiet' has no ready version");
}

TEST(ModelManagerTest, SetReplacesAndRemoveDeletes) {
  ModelManager manager;
  manager.Set(Entry("m", {Ready("m", 1)}));
  auto held = manager.Resolve("m", "");
  ASSERT_TRUE(held.ok());
  manager.Set(Entry("m", {Ready("m", 5)}));
  EXPECT_EQ((*manager.Resolve("m", ""))->version, 5);
  EXPECT_EQ(manager.Resolve("m", "1").status().code(), Status::Code::kNotFound);
  // A request that resolved version 1 before the swap still holds it.
  EXPECT_EQ((*held)->version, 1);
  EXPECT_EQ((*held)->name, "m");

  manager.Remove("m");
  EXPECT_EQ(manager.Resolve("m", "").status().code(), Status::Code::kNotFound);
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
      auto got = manager.Resolve("m", "");
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

TEST(ModelManagerTest, AliasesResolveAndProductionIsTheDefault) {
  ModelManager manager;
  ModelEntry e = Entry("m", {Ready("m", 1), Ready("m", 2), Ready("m", 3)});
  e.aliases = {{"staging", 3}};
  manager.Set(e);
  EXPECT_EQ((*manager.Resolve("m", ""))->version, 3);  // no production: the latest READY
  EXPECT_EQ((*manager.Resolve("m", "staging"))->version, 3);
  auto unknown = manager.Resolve("m", "canary");
  EXPECT_EQ(unknown.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(unknown.status().message(), "Request for unknown model: 'm' version canary is not found (model 'm' has no version or alias 'canary')");

  e.aliases["production"] = 1;
  manager.Set(e);
  EXPECT_EQ((*manager.Resolve("m", ""))->version, 1);
  EXPECT_EQ((*manager.Resolve("m", "production"))->version, 1);
  EXPECT_EQ((*manager.Resolve("m", "3"))->version, 3);
}

TEST(ModelManagerTest, ProductionOnAnUnreadyVersionIsUnavailableNotSilentlyAnother) {
  ModelManager manager;
  ModelEntry e = Entry("m", {NotReady(1, ModelState::kUnavailable, "bad file"), Ready("m", 2)});
  e.aliases = {{"production", 1}};
  manager.Set(e);
  auto got = manager.Resolve("m", "");
  EXPECT_EQ(got.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(got.status().message(), "version 1 of model 'm' is UNAVAILABLE: bad file");
}

TEST(PickVersionTest, KeysAreStickyAndSharesFollowTheWeights) {
  const std::vector<WeightedVersion> split = {{3, 90}, {4, 10}};
  std::map<int64_t, int> by_key;
  for (int i = 0; i < 10000; ++i) {
    const std::string key = "user-" + std::to_string(i);
    const int64_t v = PickVersion(split, key);
    EXPECT_EQ(PickVersion(split, key), v);  // the same key, the same version
    ++by_key[v];
  }
  EXPECT_NEAR(by_key[4], 1000, 150);
  std::map<int64_t, int> random;
  for (int i = 0; i < 10000; ++i) ++random[PickVersion(split, "")];
  EXPECT_NEAR(random[4], 1000, 150);
  EXPECT_EQ(random.size(), 2u);
  EXPECT_EQ(PickVersion({{7, 1}}, "x"), 7);
}

// A request's headers: name (lower-case) -> value.
class MapKeys final : public RoutingKeys {
 public:
  explicit MapKeys(std::map<std::string, std::string, std::less<>> values)
      : values_(std::move(values)) {}
  std::string_view Find(std::string_view name) const override {
    auto it = values_.find(name);
    return it == values_.end() ? std::string_view() : std::string_view(it->second);
  }

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

TEST(ModelManagerTest, ASplitAliasAndTheDefaultPickByWeight) {
  ModelManager manager;
  ModelEntry e = Entry("m", {Ready("m", 1), Ready("m", 2)});
  e.aliases = {{"production", 1}};
  e.splits = {{"production", {{1, 50}, {2, 50}}}};
  manager.Set(e);
  std::map<int64_t, int> seen;
  for (int i = 0; i < 200; ++i) {
    ++seen[(*manager.Resolve("m", ""))->version];
    ++seen[(*manager.Resolve("m", "production"))->version];
  }
  EXPECT_EQ(seen.size(), 2u);
  const MapKeys k({{"berth-routing-key", std::string("k")}});
  EXPECT_EQ((*manager.Resolve("m", "", &k))->version, (*manager.Resolve("m", "", &k))->version);
  EXPECT_EQ((*manager.Resolve("m", "2"))->version, 2);  // a number is never split
}

TEST(ModelManagerTest, ASplitWithAStickyKeyReadsThatHeaderOnly) {
  ModelManager manager;
  ModelEntry e = Entry("m", {Ready("m", 1), Ready("m", 2)});
  const std::vector<WeightedVersion> split = {{1, 50}, {2, 50}};
  e.aliases = {{"production", 1}, {"canary", 1}};
  e.splits = {{"production", split}, {"canary", split}};
  e.split_keys = {{"production", "x-user"}};
  manager.Set(e);
  std::set<int64_t> by_default_key;
  for (int i = 0; i < 64; ++i) {
    const std::string user = "user-" + std::to_string(i);
    // production follows x-user, whatever Berth-Routing-Key says.
    const MapKeys keys({{"x-user", user}, {"berth-routing-key", "fixed"}});
    EXPECT_EQ((*manager.Resolve("m", "", &keys))->version, PickVersion(split, user));
    EXPECT_EQ((*manager.Resolve("m", "production", &keys))->version, PickVersion(split, user));
    // canary names no sticky key: Berth-Routing-Key keeps it on one version.
    by_default_key.insert((*manager.Resolve("m", "canary", &keys))->version);
  }
  EXPECT_EQ(by_default_key, std::set<int64_t>{PickVersion(split, "fixed")});
}

TEST(ModelManagerTest, ASplitKeyedByAnInputReadsTheRequestsFirstValue) {
  ModelManager manager;
  EXPECT_FALSE(manager.SplitsByInput());
  ModelEntry e = Entry("m", {Ready("m", 1), Ready("m", 2)});
  const std::vector<WeightedVersion> split = {{1, 50}, {2, 50}};
  e.aliases = {{"production", 1}};
  e.splits = {{"production", split}};
  e.split_keys = {{"production", "input:user"}};
  manager.Set(e);
  EXPECT_TRUE(manager.SplitsByInput());
  std::set<int64_t> seen;
  for (int64_t user = 0; user < 64; ++user) {
    InferenceRequest request;
    // The first element keys the request; later rows and headers do not.
    request.inputs.push_back(
        testing::MakeTensor<int64_t>("user", DataType::kInt64, {2}, {user, 1000 + user}));
    const MapKeys headers(std::map<std::string, std::string, std::less<>>{{"berth-routing-key", "fixed"}});
    const RequestRoutingKeys keys(request, &headers);
    const std::string_view key(reinterpret_cast<const char*>(&user), sizeof(user));
    EXPECT_EQ(keys.Find("input:user"), key);
    EXPECT_EQ(keys.Find("berth-routing-key"), "fixed");
    EXPECT_EQ(keys.Find("input:other"), "");
    const int64_t picked = (*manager.Resolve("m", "", &keys))->version;
    EXPECT_EQ(picked, PickVersion(split, key));
    seen.insert(picked);
  }
  EXPECT_EQ(seen, (std::set<int64_t>{1, 2}));
  // BYTES inputs key on their first element's bytes.
  InferenceRequest request;
  Tensor names("user", DataType::kBytes, {2});
  names.strings() = {"alice", "bob"};
  request.inputs.push_back(std::move(names));
  EXPECT_EQ(RequestRoutingKeys(request, nullptr).Find("input:user"), "alice");
  // The count follows the table: replaced by a header-keyed split, then removed.
  e.split_keys = {{"production", "x-user"}};
  manager.Set(e);
  EXPECT_FALSE(manager.SplitsByInput());
  e.split_keys = {{"production", "input:user"}};
  manager.Set(e);
  manager.Remove("m");
  EXPECT_FALSE(manager.SplitsByInput());
}

}  // namespace
}  // namespace berth
