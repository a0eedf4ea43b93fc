#include "monitoring/logs/log_file.h"

#include <cerrno>
#include <cstring>
#include <system_error>

namespace berth::logs {
namespace {

std::chrono::system_clock::time_point ToSystem(std::filesystem::file_time_type t) {
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(
      std::chrono::file_clock::to_sys(t));
}

}  // namespace

StatusOr<std::unique_ptr<LogFile>> LogFile::Open(const std::string& where, Retention retention) {
  if (where == "stdout") return std::unique_ptr<LogFile>(new LogFile(stdout, {}, retention));
  if (where == "stderr") return std::unique_ptr<LogFile>(new LogFile(stderr, {}, retention));
  std::unique_ptr<LogFile> file(new LogFile(nullptr, where, retention));
  RETURN_IF_ERROR(file->Reopen());
  file->DeleteExpired();
  return file;
}

LogFile::~LogFile() {
  if (stream_ != nullptr && !path_.empty()) std::fclose(stream_);
}

std::filesystem::path LogFile::Rotated(const std::filesystem::path& path, int k) {
  return path.string() + "." + std::to_string(k);
}

Status LogFile::Reopen() {
  if (stream_ != nullptr) std::fclose(stream_);
  stream_ = std::fopen(path_.c_str(), "a");
  if (stream_ == nullptr) {
    return Status::Unavailable("cannot open log file '" + path_.string() +
                               "': " + std::strerror(errno));
  }
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path_, ec);
  size_ = ec ? 0 : size;
  // A file kept from an earlier run counts its age from its last change.
  opened_ = std::chrono::system_clock::now();
  if (size_ > 0) {
    const auto mtime = std::filesystem::last_write_time(path_, ec);
    if (!ec) opened_ = ToSystem(mtime);
  }
  return Status::Ok();
}

void LogFile::Rotate() {
  std::error_code ec;
  const int keep = retention_.max_files;
  std::filesystem::remove(Rotated(path_, keep - 1), ec);
  for (int k = keep - 2; k >= 1; --k) {
    std::filesystem::rename(Rotated(path_, k), Rotated(path_, k + 1), ec);
  }
  if (keep > 1) {
    std::filesystem::rename(path_, Rotated(path_, 1), ec);
  } else {
    std::filesystem::remove(path_, ec);
  }
  // A failure to reopen leaves stream_ null; Write tries again.
  (void)Reopen();
  DeleteExpired();
}

void LogFile::DeleteExpired() {
  // Files beyond max_files (left by a run with a larger limit) and, with an
  // age limit, rotated files older than it.
  std::error_code ec;
  for (int k = retention_.max_files; k < retention_.max_files + 1000; ++k) {
    if (!std::filesystem::remove(Rotated(path_, k), ec)) break;
  }
  if (retention_.max_age.count() <= 0) return;
  const auto oldest = std::chrono::system_clock::now() - retention_.max_age;
  for (int k = 1; k < retention_.max_files; ++k) {
    const auto mtime = std::filesystem::last_write_time(Rotated(path_, k), ec);
    if (ec) continue;
    if (ToSystem(mtime) < oldest) {
      std::filesystem::remove(Rotated(path_, k), ec);
    }
  }
}

void LogFile::Maintain() {
  if (path_.empty() || retention_.max_age.count() <= 0) return;
  if (size_ > 0 && std::chrono::system_clock::now() - opened_ >= retention_.max_age) {
    Rotate();
  } else {
    DeleteExpired();
  }
}

Status LogFile::Write(std::string_view bytes) {
  if (!path_.empty()) {
    const bool too_big = size_ > 0 && size_ + bytes.size() > retention_.max_bytes;
    const bool too_old = size_ > 0 && retention_.max_age.count() > 0 &&
                         std::chrono::system_clock::now() - opened_ >= retention_.max_age;
    if (too_big || too_old || stream_ == nullptr) {
      if (stream_ == nullptr) {
        RETURN_IF_ERROR(Reopen());
      } else {
        Rotate();
      }
      if (stream_ == nullptr) return Status::Unavailable("cannot reopen log file");
    }
  }
  const size_t written = std::fwrite(bytes.data(), 1, bytes.size(), stream_);
  size_ += written;
  if (std::fflush(stream_) != 0 || written != bytes.size()) {
    return Status::Unavailable("cannot write log file '" + path_.string() +
                               "': " + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace berth::logs
