#include "registry/version_policy.h"

#include <algorithm>

namespace berth {

std::vector<int64_t> SelectVersions(const VersionPolicy& policy, std::vector<int64_t> present) {
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());
  switch (policy.kind) {
    case VersionPolicy::Kind::kAll:
      return present;
    case VersionPolicy::Kind::kLatest: {
      const auto keep = static_cast<size_t>(std::max<int64_t>(policy.latest, 0));
      if (present.size() > keep) present.erase(present.begin(), present.end() - keep);
      return present;
    }
    case VersionPolicy::Kind::kSpecific: {
      std::vector<int64_t> out;
      for (int64_t v : present) {
        if (std::find(policy.specific.begin(), policy.specific.end(), v) != policy.specific.end()) {
          out.push_back(v);
        }
      }
      return out;
    }
  }
  return {};
}

std::vector<int64_t> MissingSpecificVersions(const VersionPolicy& policy,
                                             const std::vector<int64_t>& present) {
  std::vector<int64_t> missing;
  if (policy.kind != VersionPolicy::Kind::kSpecific) return missing;
  for (int64_t v : policy.specific) {
    if (std::find(present.begin(), present.end(), v) == present.end()) missing.push_back(v);
  }
  std::sort(missing.begin(), missing.end());
  return missing;
}

}  // namespace berth
