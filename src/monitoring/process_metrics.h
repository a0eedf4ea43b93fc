// The process's own gauges and counters under the names every Prometheus
// client library uses (process_cpu_seconds_total, process_resident_memory_bytes,
// process_open_fds, ...), read from /proc/self at scrape time. Linux only:
// elsewhere, or when /proc cannot be read, the series are left out.
#pragma once

#include <string>

namespace berth {

// The exposition text of the process series.
std::string RenderProcessMetrics();

}  // namespace berth
