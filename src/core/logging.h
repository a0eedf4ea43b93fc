// Structured logging to stderr, as text or one JSON object per line.
//
//   LOG_INFO("loaded model", {{"model", name}, {"version", "1"}});
//
// The level and format are process-wide, set once by main() before any
// thread starts. Writing is thread-safe.
#pragma once

#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace berth {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

using LogField = std::pair<std::string_view, std::string_view>;

void SetLogLevel(LogLevel level);
void SetLogFormat(LogFormat format);
bool ParseLogLevel(std::string_view name, LogLevel* level);
bool LogEnabled(LogLevel level);
void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

// `s` as a JSON string, quotes included, appended to `out` (control
// characters escaped; other bytes as they are).
void AppendJsonString(std::string* out, std::string_view s);
// "2026-12-01T19:30:00.123Z": RFC 3339, UTC, milliseconds.
std::string FormatTimestamp(std::chrono::system_clock::time_point time);

}  // namespace berth

#define BERTH_LOG(level, ...)                                         \
  do {                                                                \
    if (::berth::LogEnabled(level)) ::berth::Log(level, __VA_ARGS__); \
  } while (0)
#define LOG_DEBUG(...) BERTH_LOG(::berth::LogLevel::kDebug, __VA_ARGS__)
#define LOG_INFO(...) BERTH_LOG(::berth::LogLevel::kInfo, __VA_ARGS__)
#define LOG_WARN(...) BERTH_LOG(::berth::LogLevel::kWarn, __VA_ARGS__)
#define LOG_ERROR(...) BERTH_LOG(::berth::LogLevel::kError, __VA_ARGS__)
