// LogFile: where a log's bytes go: standard output or error, or a file with
// a retention limit (rotated by size and age, at most N files kept).
//
// Not thread-safe: each log writes from its one writer thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth::logs {

struct Retention {
  uint64_t max_bytes = 100ull << 20;  // rotate when a write would pass it
  int max_files = 5;                  // files kept, the current one included
  std::chrono::hours max_age{0};      // 0: no age limit
};

class LogFile {
 public:
  // "stdout", "stderr", or a path (opened for append, created if missing;
  // its directory must exist). Retention applies to paths only.
  static StatusOr<std::unique_ptr<LogFile>> Open(const std::string& where, Retention retention);
  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  // Appends `bytes` (whole lines) and flushes; rotates first when the file
  // would pass max_bytes or is older than max_age. A write error is
  // returned (the caller counts it); the next write tries again.
  Status Write(std::string_view bytes);
  // Applies the age limit without writing (called when the log is idle).
  void Maintain();

  // PATH.k, the k-th newest rotated file (k >= 1).
  static std::filesystem::path Rotated(const std::filesystem::path& path, int k);

 private:
  LogFile(std::FILE* stream, std::filesystem::path path, Retention retention)
      : stream_(stream), path_(std::move(path)), retention_(retention) {}
  Status Reopen();
  void Rotate();
  void DeleteExpired();

  std::FILE* stream_;
  std::filesystem::path path_;  // empty for stdout and stderr
  Retention retention_;
  uint64_t size_ = 0;
  std::chrono::system_clock::time_point opened_;
};

}  // namespace berth::logs
