// Content addresses for model artifacts: SHA-256 over the file's bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth {

// A pushed artifact: its bytes in memory, or a file (an upload streamed to
// disk) from byte `offset` on (what precedes it is the push's metadata).
struct ArtifactSource {
  std::string_view bytes;
  std::filesystem::path file;
  uint64_t offset = 0;
  bool in_file() const { return !file.empty(); }
};

struct ArtifactDigest {
  std::string digest;  // "sha256:" followed by 64 lower-case hex digits
  int64_t size = 0;    // bytes hashed
};

// Reads `file` in chunks (never whole into memory) and hashes it.
StatusOr<ArtifactDigest> Sha256File(const std::filesystem::path& file);
ArtifactDigest Sha256Bytes(std::string_view bytes);

// The whole of `file`, for a store that keeps artifacts (RegistryStore::
// HoldsArtifacts()); NotFound if it cannot be opened.
StatusOr<std::string> ReadFileBytes(const std::filesystem::path& file);

// Writes `bytes` to `path` (created or truncated) and fsyncs it, so that a
// rename that follows publishes complete contents even across a power cut.
Status WriteFileDurably(const std::filesystem::path& path, std::string_view bytes);
// Copies `source` from byte `offset` to its end into `dest` (created or
// truncated), fsynced.
Status CopyFileTailDurably(const std::filesystem::path& source, uint64_t offset,
                           const std::filesystem::path& dest);
// fsyncs a directory, making the renames and creations inside it durable.
Status SyncDirectory(const std::filesystem::path& dir);

}  // namespace berth
