// Which of the versions present on disk a model serves: a pure function of
// the policy and the versions present.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model_config.h"

namespace berth {

// Returns the versions to serve, ascending. kSpecific returns only those of
// its versions that are present; see MissingSpecificVersions.
std::vector<int64_t> SelectVersions(const VersionPolicy& policy, std::vector<int64_t> present);

// The versions a kSpecific policy names that are not present (empty for other kinds).
std::vector<int64_t> MissingSpecificVersions(const VersionPolicy& policy,
                                             const std::vector<int64_t>& present);

}  // namespace berth
