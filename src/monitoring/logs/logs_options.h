// LogsOptions: what the access log and the payload log write, and where
// (the --access-log and --payload-log* flags; docs/monitoring.md#logs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace berth::logs {

struct LogsOptions {
  // "off", "stdout", "stderr" or a file path: one JSON line per request.
  std::string access_log = "off";
  // "off", a file path (JSON lines of structured CloudEvents) or an
  // http://HOST[:PORT][/PATH] sink (one binary-mode CloudEvent per POST).
  std::string payload_log = "off";
  // The CA file (PEM) an https:// payload sink's certificate must chain to;
  // empty: the system's CAs.
  std::string payload_ca;
  // The fraction of valid requests whose payloads are logged.
  double payload_rate = 1.0;
  // Inputs and outputs (by name, any model) whose data is never logged.
  std::vector<std::string> redact;
  // Retention of the log files (both logs): a file reaching max_bytes is
  // rotated (PATH -> PATH.1 -> ...), and at most max_files files are kept,
  // the current one included; with max_age_hours > 0 a file older than
  // that is rotated and rotated files older than that are deleted.
  uint64_t max_bytes = 100ull << 20;
  int max_files = 5;
  int max_age_hours = 0;
};

// Reads one of the logs' flags (--access-log, --payload-log,
// --payload-log-ca, --payload-log-rate, --payload-log-redact, --log-max-bytes,
// --log-max-files, --log-max-age-hours) into `options`. False if `flag` is
// none of them; InvalidArgument in `*error` for a bad value.
bool ParseLogsFlag(std::string_view flag, std::string_view value, LogsOptions* options,
                   Status* error);

// The flags' lines of `berth --help`.
extern const char* const kLogsUsage;

}  // namespace berth::logs
