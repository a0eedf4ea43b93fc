// The PostgreSQL registry store's schema: its versioned migrations, applied
// in order at start under an advisory lock (postgres_registry_store.cc).
#pragma once

#include <vector>

namespace berth {

// Each entry brings the schema from version i to i + 1.
const std::vector<const char*>& PostgresMigrations();

}  // namespace berth
