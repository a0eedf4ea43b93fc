#include "core/request_id.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace berth {
namespace {

TEST(RequestIdTest, NewIdsAre32HexDigitsAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 32u);
    for (char c : id) ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

TEST(RequestIdTest, ThreadsDrawDistinctIds) {
  std::vector<std::vector<std::string>> drawn(4);
  std::vector<std::thread> threads;
  for (auto& ids : drawn) {
    threads.emplace_back([&ids] {
      for (int i = 0; i < 1000; ++i) ids.push_back(NewRequestId());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& ids : drawn) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), 4000u);
}

TEST(RequestIdTest, UsableHeaderIds) {
  EXPECT_TRUE(IsUsableRequestId("abc-123"));
  EXPECT_TRUE(IsUsableRequestId(std::string(kMaxRequestIdBytes, 'x')));
  EXPECT_FALSE(IsUsableRequestId(""));
  EXPECT_FALSE(IsUsableRequestId(std::string(kMaxRequestIdBytes + 1, 'x')));
  EXPECT_FALSE(IsUsableRequestId("a b"));
  EXPECT_FALSE(IsUsableRequestId(std::string("a\0b", 3)));
  EXPECT_FALSE(IsUsableRequestId("caf\xc3\xa9"));
}

}  // namespace
}  // namespace berth
