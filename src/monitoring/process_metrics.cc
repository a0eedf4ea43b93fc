#include "monitoring/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace berth {
namespace {

void Gauge(std::string* out, const char* name, const char* type, const char* help, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.17g", value);
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
          name + " " + text + "\n";
}

// The fields of /proc/self/stat after the command name (which may hold
// spaces and parentheses: it ends at the last ')'), numbered as proc(5)
// does: the first one returned is field 3, the state.
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

int OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

std::string RenderProcessMetrics() {
  std::string out;
  const std::vector<std::string> f = StatFields();
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  // proc(5): utime 14, stime 15, num_threads 20, starttime 22, vsize 23,
  // rss 24 (pages); index = field - 3.
  if (f.size() > 21 && ticks > 0) {
    try {
      const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
      Gauge(&out, "process_cpu_seconds_total", "counter",
            "Total user and system CPU time spent in seconds.", cpu);
      Gauge(&out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
            std::stod(f[20]));
      Gauge(&out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
            std::stod(f[21]) * static_cast<double>(sysconf(_SC_PAGESIZE)));
      Gauge(&out, "process_start_time_seconds", "gauge",
            "Start time of the process since unix epoch in seconds.",
            BootTimeSeconds() + std::stod(f[19]) / ticks);
      Gauge(&out, "process_threads", "gauge", "Number of OS threads in the process.",
            std::stod(f[17]));
    } catch (const std::exception&) {
      // A /proc this code does not understand: no process series.
      out.clear();
    }
  }
  if (const int fds = OpenFds(); fds >= 0) {
    Gauge(&out, "process_open_fds", "gauge", "Number of open file descriptors.", fds);
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    Gauge(&out, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
          static_cast<double>(limit.rlim_cur));
  }
  return out;
}

}  // namespace berth
