// Content addresses for model artifacts: SHA-256 over the file's bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "core/status.h"

namespace berth {

struct ArtifactDigest {
  std::string digest;  // "sha256:" followed by 64 lower-case hex digits
  int64_t size = 0;    // bytes hashed
};

// Reads `file` in chunks (never whole into memory) and hashes it.
StatusOr<ArtifactDigest> Sha256File(const std::filesystem::path& file);

}  // namespace berth
