#include "registry/version_policy.h"

#include <gtest/gtest.h>

#include <vector>

namespace berth {
namespace {

using Versions = std::vector<int64_t>;

VersionPolicy Latest(int64_t n) {
  VersionPolicy p;
  p.kind = VersionPolicy::Kind::kLatest;
  p.latest = n;
  return p;
}

VersionPolicy All() {
  VersionPolicy p;
  p.kind = VersionPolicy::Kind::kAll;
  return p;
}

VersionPolicy Specific(Versions v) {
  VersionPolicy p;
  p.kind = VersionPolicy::Kind::kSpecific;
  p.specific = std::move(v);
  return p;
}

TEST(SelectVersionsTest, DefaultPolicyIsLatestOne) {
  EXPECT_EQ(SelectVersions(VersionPolicy{}, {1, 2, 3}), (Versions{3}));
}

TEST(SelectVersionsTest, LatestN) {
  EXPECT_EQ(SelectVersions(Latest(1), {1, 2, 3}), (Versions{3}));
  EXPECT_EQ(SelectVersions(Latest(2), {3, 1, 10, 2}), (Versions{3, 10}));  // numeric, not lexical
  EXPECT_EQ(SelectVersions(Latest(5), {2, 1}), (Versions{1, 2}));          // fewer present
  EXPECT_EQ(SelectVersions(Latest(2), {}), Versions{});
  EXPECT_EQ(SelectVersions(Latest(2), {4, 4, 3}), (Versions{3, 4}));       // duplicates once
}

TEST(SelectVersionsTest, All) {
  EXPECT_EQ(SelectVersions(All(), {3, 1, 2}), (Versions{1, 2, 3}));
  EXPECT_EQ(SelectVersions(All(), {}), Versions{});
}

TEST(SelectVersionsTest, SpecificKeepsOnlyThosePresent) {
  EXPECT_EQ(SelectVersions(Specific({3, 1}), {1, 2, 3}), (Versions{1, 3}));
  EXPECT_EQ(SelectVersions(Specific({7}), {1, 2, 3}), Versions{});
  EXPECT_EQ(SelectVersions(Specific({2, 9}), {1, 2, 3}), (Versions{2}));
}

TEST(MissingSpecificVersionsTest, ListsAbsentOnes) {
  EXPECT_EQ(MissingSpecificVersions(Specific({9, 2, 7}), {1, 2, 3}), (Versions{7, 9}));
  EXPECT_EQ(MissingSpecificVersions(Specific({1, 3}), {1, 2, 3}), Versions{});
  EXPECT_EQ(MissingSpecificVersions(Specific({4}), {}), (Versions{4}));
}

TEST(MissingSpecificVersionsTest, EmptyForOtherKinds) {
  EXPECT_EQ(MissingSpecificVersions(Latest(3), {}), Versions{});
  EXPECT_EQ(MissingSpecificVersions(All(), {}), Versions{});
}

}  // namespace
}  // namespace berth
