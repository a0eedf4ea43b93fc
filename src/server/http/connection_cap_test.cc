#include "server/http/connection_cap.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace berth::http {
namespace {

TEST(ConnectionCapTest, LeavesAnEighthOfTheLimitAndAtLeast64Descriptors) {
  EXPECT_EQ(AutomaticConnectionCap(1024), 1024 - 128);
  EXPECT_EQ(AutomaticConnectionCap(524288), 524288 - 65536);
  EXPECT_EQ(AutomaticConnectionCap(256), 256 - 64);
  EXPECT_EQ(DescriptorHeadroom(100), 64u);
}

TEST(ConnectionCapTest, ATinyLimitStillServesOneConnection) {
  EXPECT_EQ(AutomaticConnectionCap(64), 1);
  EXPECT_EQ(AutomaticConnectionCap(10), 1);
}

TEST(ConnectionCapTest, SplitsTheDescriptorsBetweenRestAndGrpcBelowTheLimit) {
  // 20,000 open files: 2,500 kept free, 17,500 for connections.
  const ConnectionCaps automatic = SplitConnectionCaps(20000, 0, 0);
  EXPECT_EQ(automatic.grpc, 4375);
  EXPECT_EQ(automatic.rest, 13125);
  const ConnectionCaps rest_given = SplitConnectionCaps(20000, 1000, 0);
  EXPECT_EQ(rest_given.rest, 1000);
  EXPECT_EQ(rest_given.grpc, 16500);
  const ConnectionCaps grpc_given = SplitConnectionCaps(20000, 0, 500);
  EXPECT_EQ(grpc_given.rest, 17000);
  EXPECT_EQ(grpc_given.grpc, 500);
  // Asked for more than there is: as asked (the server warns).
  const ConnectionCaps both = SplitConnectionCaps(20000, 20000, 30000);
  EXPECT_EQ(both.rest, 20000);
  EXPECT_EQ(both.grpc, 30000);
  const ConnectionCaps greedy = SplitConnectionCaps(20000, 20000, 0);
  EXPECT_EQ(greedy.grpc, 1);
  // A tiny limit still leaves each front end one connection.
  EXPECT_EQ(SplitConnectionCaps(10, 0, 0).rest, 1);
  EXPECT_EQ(SplitConnectionCaps(10, 0, 0).grpc, 1);
  // Unlimited: no automatic caps.
  EXPECT_EQ(SplitConnectionCaps(0, 0, 0).rest, 0);
  EXPECT_EQ(SplitConnectionCaps(0, 0, 7).grpc, 7);
}

TEST(ConnectionCapTest, AnUnlimitedProcessHasNoCap) { EXPECT_EQ(AutomaticConnectionCap(0), 0); }

TEST(ConnectionCapTest, RaisesTheSoftLimitToTheHardOne) {
  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  if (original.rlim_max == RLIM_INFINITY || original.rlim_max < 2) {
    GTEST_SKIP() << "the hard limit leaves no room to lower the soft one";
  }
  rlimit lowered = original;
  lowered.rlim_cur = original.rlim_max / 2;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  const OpenFileLimit got = RaiseOpenFileLimit();
  EXPECT_EQ(got.before, lowered.rlim_cur);
  EXPECT_EQ(got.now, original.rlim_max);
  rlimit after{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, original.rlim_max);
  setrlimit(RLIMIT_NOFILE, &original);
}

}  // namespace
}  // namespace berth::http
