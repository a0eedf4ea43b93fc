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
