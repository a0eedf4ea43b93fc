#include "monitoring/process_metrics.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>

namespace berth {
namespace {

double Value(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::strtod(line.c_str() + name.size() + 1, nullptr);
  }
  ADD_FAILURE() << name << " not in\n" << text;
  return -1;
}

TEST(ProcessMetricsTest, ReportsTheProcessAsProcSeesIt) {
  const std::string before = RenderProcessMetrics();
  const int fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  std::thread other([] {});
  const std::string during = RenderProcessMetrics();
  other.join();
  close(fd);
  EXPECT_EQ(Value(during, "process_open_fds"), Value(before, "process_open_fds") + 1);
  EXPECT_GE(Value(during, "process_threads"), 1);
  EXPECT_GT(Value(during, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(Value(during, "process_virtual_memory_bytes"),
            Value(during, "process_resident_memory_bytes"));
  EXPECT_GE(Value(during, "process_cpu_seconds_total"), 0);
  EXPECT_GT(Value(during, "process_start_time_seconds"), 1.7e9);
  EXPECT_GT(Value(during, "process_max_fds"), 0);
  EXPECT_NE(during.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
}

}  // namespace
}  // namespace berth
