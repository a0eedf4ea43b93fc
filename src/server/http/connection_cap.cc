#include "server/http/connection_cap.h"

#include <sys/resource.h>

#include <algorithm>

namespace berth::http {

OpenFileLimit RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  auto value = [](rlim_t v) -> uint64_t { return v == RLIM_INFINITY ? 0 : v; };
  OpenFileLimit result{value(limit.rlim_cur), value(limit.rlim_cur)};
  if (limit.rlim_cur == limit.rlim_max) return result;
  rlimit raised = limit;
  raised.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &raised) == 0) result.now = value(raised.rlim_cur);
  return result;
}

uint64_t DescriptorHeadroom(uint64_t limit) { return std::max<uint64_t>(64, limit / 8); }

int64_t AutomaticConnectionCap(uint64_t limit) {
  if (limit == 0) return 0;
  const uint64_t headroom = DescriptorHeadroom(limit);
  if (limit <= headroom) return 1;
  return static_cast<int64_t>(limit - headroom);
}

ConnectionCaps SplitConnectionCaps(uint64_t limit, int64_t rest_requested,
                                   int64_t grpc_requested) {
  const int64_t total = AutomaticConnectionCap(limit);
  ConnectionCaps caps{rest_requested, grpc_requested};
  if (total == 0) return caps;
  if (rest_requested == 0 && grpc_requested == 0) {
    caps.grpc = std::max<int64_t>(1, total / 4);
    caps.rest = std::max<int64_t>(1, total - caps.grpc);
  } else if (rest_requested == 0) {
    caps.rest = std::max<int64_t>(1, total - grpc_requested);
  } else if (grpc_requested == 0) {
    caps.grpc = std::max<int64_t>(1, total - rest_requested);
  }
  return caps;
}

}  // namespace berth::http
