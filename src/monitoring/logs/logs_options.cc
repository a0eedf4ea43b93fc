#include "monitoring/logs/logs_options.h"

#include <charconv>
#include <cmath>

#include "net/http_client.h"
#include "core/byte_size.h"

namespace berth::logs {

const char* const kLogsUsage =
    R"(  --access-log WHERE       off | stdout | stderr | FILE: one JSON line per inference
                           request, written at info level (failures at warn) (default off)
  --payload-log WHERE      off | FILE | http[s]://HOST[:PORT][/PATH]: request and response
                           payloads as CloudEvents, as KServe's logger sends them (default off)
  --payload-log-ca FILE    CA certificates (PEM) an https:// sink's certificate must chain
                           to (default: the system's CAs)
  --payload-log-rate R     fraction of requests whose payloads are logged (default 1)
  --payload-log-redact N   comma-separated input/output names never logged ("[redacted]")
  --log-max-bytes SIZE     rotate a log file at this size (default 100MiB)
  --log-max-files N        log files kept, the current one included (default 5)
  --log-max-age-hours H    rotate and delete log files older than this (default 0: no limit)
)";

namespace {

template <typename T>
bool ParseInt(std::string_view s, T* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

bool ParseLogsFlag(std::string_view flag, std::string_view value, LogsOptions* o, Status* error) {
  const auto bad = [&](std::string_view why) {
    *error = Status::InvalidArgument("invalid value '" + std::string(value) + "' for " +
                                     std::string(flag) + ": " + std::string(why));
    return true;
  };
  if (flag == "--access-log") {
    if (value.empty()) return bad("give off, stdout, stderr or a file path");
    o->access_log = std::string(value);
  } else if (flag == "--payload-log") {
    if (value.empty()) return bad("give off, a file path or an http(s):// URL");
    if (value.starts_with("http://") || value.starts_with("https://")) {
      auto url = net::ParseServerUrl(value);
      if (!url.ok()) return bad(url.status().message());
    }
    o->payload_log = std::string(value);
  } else if (flag == "--payload-log-ca") {
    if (value.empty()) return bad("give a CA file (PEM)");
    o->payload_ca = std::string(value);
  } else if (flag == "--payload-log-rate") {
    // from_chars for double is in libstdc++ 11+.
    double rate = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), rate);
    if (ec != std::errc() || end != value.data() + value.size() || !(rate > 0 && rate <= 1)) {
      return bad("a fraction in (0, 1]");
    }
    o->payload_rate = rate;
  } else if (flag == "--payload-log-redact") {
    o->redact.clear();
    for (size_t start = 0; start <= value.size();) {
      size_t comma = value.find(',', start);
      if (comma == std::string_view::npos) comma = value.size();
      if (comma > start) o->redact.emplace_back(value.substr(start, comma - start));
      start = comma + 1;
    }
  } else if (flag == "--log-max-bytes") {
    auto size = ParseByteSize(value);
    if (!size.ok() || *size < 4096) return bad("a size of at least 4096 bytes");
    o->max_bytes = *size;
  } else if (flag == "--log-max-files") {
    if (!ParseInt(value, &o->max_files) || o->max_files < 1 || o->max_files > 1000) {
      return bad("a number of files, 1 to 1000");
    }
  } else if (flag == "--log-max-age-hours") {
    if (!ParseInt(value, &o->max_age_hours) || o->max_age_hours < 0) {
      return bad("a number of hours, 0 for no limit");
    }
  } else {
    return false;
  }
  return true;
}

}  // namespace berth::logs
