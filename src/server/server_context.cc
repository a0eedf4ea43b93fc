#include "server/server_context.h"

namespace berth {

bool ServerContext::IsReady() const {
  if (ready == nullptr || !ready->load()) return false;
  if (!strict_readiness) return true;
  for (const ModelEntry& m : models->List()) {
    if (m.LatestReady() == nullptr) return false;
  }
  return true;
}

}  // namespace berth
