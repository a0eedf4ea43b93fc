#include "monitoring/logs/log_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

namespace berth::logs {
namespace {

namespace fs = std::filesystem;

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "berth_log_file_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string Read(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  int FilesIn() const {
    int n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++n;
    return n;
  }

  fs::path dir_;
};

TEST_F(LogFileTest, AppendsToAnExistingFile) {
  const fs::path path = dir_ / "access.log";
  { std::ofstream(path) << "earlier\n"; }
  auto file = LogFile::Open(path.string(), {});
  ASSERT_TRUE(file.ok()) << file.status().message();
  ASSERT_TRUE((*file)->Write("later\n").ok());
  EXPECT_EQ(Read(path), "earlier\nlater\n");
}

TEST_F(LogFileTest, RotatesBySizeAndKeepsAtMostMaxFiles) {
  const fs::path path = dir_ / "payload.log";
  auto file = LogFile::Open(path.string(), {.max_bytes = 10, .max_files = 3});
  ASSERT_TRUE(file.ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*file)->Write("line " + std::to_string(i) + "\n").ok());
  // Each 7-byte line fills a file: the newest three stay.
  EXPECT_EQ(FilesIn(), 3);
  EXPECT_EQ(Read(path), "line 9\n");
  EXPECT_EQ(Read(LogFile::Rotated(path, 1)), "line 8\n");
  EXPECT_EQ(Read(LogFile::Rotated(path, 2)), "line 7\n");
  EXPECT_FALSE(fs::exists(LogFile::Rotated(path, 3)));
}

TEST_F(LogFileTest, OneFileIsTruncatedInPlace) {
  const fs::path path = dir_ / "one.log";
  auto file = LogFile::Open(path.string(), {.max_bytes = 10, .max_files = 1});
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Write("first!\n").ok());
  ASSERT_TRUE((*file)->Write("second\n").ok());
  EXPECT_EQ(FilesIn(), 1);
  EXPECT_EQ(Read(path), "second\n");
}

TEST_F(LogFileTest, OpeningRemovesFilesBeyondTheLimitAndExpiredOnes) {
  const fs::path path = dir_ / "x.log";
  for (int k = 1; k <= 5; ++k) std::ofstream(LogFile::Rotated(path, k)) << k << "\n";
  fs::last_write_time(LogFile::Rotated(path, 1),
                      fs::file_time_type::clock::now() - std::chrono::hours(3));
  auto file = LogFile::Open(path.string(),
                            {.max_bytes = 1000, .max_files = 3, .max_age = std::chrono::hours(2)});
  ASSERT_TRUE(file.ok());
  EXPECT_FALSE(fs::exists(LogFile::Rotated(path, 1)));  // too old
  EXPECT_TRUE(fs::exists(LogFile::Rotated(path, 2)));
  EXPECT_FALSE(fs::exists(LogFile::Rotated(path, 3)));  // beyond max_files
  EXPECT_FALSE(fs::exists(LogFile::Rotated(path, 5)));
}

TEST_F(LogFileTest, AnExpiredCurrentFileIsRotatedAway) {
  const fs::path path = dir_ / "old.log";
  std::ofstream(path) << "yesterday\n";
  fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::hours(25));
  auto file = LogFile::Open(path.string(),
                            {.max_bytes = 1000, .max_files = 2, .max_age = std::chrono::hours(24)});
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Write("today\n").ok());
  EXPECT_EQ(Read(path), "today\n");
  // Rotated, and older than the limit: deleted.
  EXPECT_FALSE(fs::exists(LogFile::Rotated(path, 1)));
}

TEST_F(LogFileTest, AMissingDirectoryIsAnError) {
  auto file = LogFile::Open((dir_ / "no" / "such" / "x.log").string(), {});
  EXPECT_FALSE(file.ok());
}

}  // namespace
}  // namespace berth::logs
