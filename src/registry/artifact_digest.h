// Content addresses for model artifacts: SHA-256 over the file's bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace berth {

// One file of a push that carries a version's whole directory: `size`
// bytes from `offset` on, counted from the start of the artifact's bytes.
struct PushedFile {
  std::string name;  // inside the version's directory (registry/version_files.h)
  uint64_t offset = 0;
  uint64_t size = 0;
};

// A pushed artifact: its bytes in memory, or a file (an upload streamed to
// disk) from byte `offset` on (what precedes it is the push's metadata).
struct ArtifactSource {
  std::string_view bytes;
  std::filesystem::path file;
  uint64_t offset = 0;
  // Empty: the bytes are one file, the model's. Else the files they hold,
  // back to back.
  std::vector<PushedFile> files;
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
// Copies `source` from byte `offset` to its end (at most `length` bytes)
// into `dest` (created or truncated), fsynced.
Status CopyFileTailDurably(const std::filesystem::path& source, uint64_t offset,
                           const std::filesystem::path& dest, uint64_t length = UINT64_MAX);
// fsyncs a directory, making the renames and creations inside it durable.
Status SyncDirectory(const std::filesystem::path& dir);

}  // namespace berth
