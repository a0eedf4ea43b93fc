// The files of a version that is a directory (registry_store.h's
// VersionFile: the Python runtime's model.py beside its side modules, a
// package directory, a pickle): what a push may carry and a replica writes,
// their bounds and content addresses, and their form in the store's
// `files` column. Shared by both stores, the push path and StoreSync.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "registry/artifact_digest.h"
#include "registry/registry_store.h"

namespace berth {

// Bounds of one version's files: how many, and their bytes in all.
inline constexpr size_t kMaxVersionFiles = 1000;
inline constexpr int64_t kMaxVersionFilesBytes = int64_t{4} << 30;

// InvalidArgument unless `name` is a plain relative path inside the
// version's directory (RelativePathProblem: no "..", no absolute path) and
// not berth-version.json, which Berth writes.
Status ValidateVersionFileName(std::string_view name);

// InvalidArgument if `files` is empty or has more than kMaxVersionFiles,
// repeats a name, holds one ValidateVersionFileName refuses or a negative
// size, or totals more than kMaxVersionFilesBytes; the message says which.
Status ValidateVersionFiles(const std::vector<VersionFile>& files);

// The digest of the set: SHA-256 over one "<digest>  <name>\n" line per
// file, sorted by name (sha256sum's form), as "sha256:<hex>"; "" for none.
std::string FilesDigest(const std::vector<VersionFile>& files);

// The stores' `files` column: a JSON array of {"name", "digest", "size"}
// ("" for none), and back. The store is shared, so what is read back is
// checked (ValidateVersionFiles, digests' form): InvalidArgument otherwise.
std::string VersionFilesJson(const std::vector<VersionFile>& files);
StatusOr<std::vector<VersionFile>> ParseVersionFilesJson(std::string_view json);

// Every regular file under `dir`, recursively, sorted by name and hashed;
// berth-version.json and __pycache__ directories (the Python worker's
// bytecode) are left out. InvalidArgument for a symbolic link or another
// kind of file (naming it), and for what ValidateVersionFiles refuses.
StatusOr<std::vector<VersionFile>> ListVersionFiles(const std::filesystem::path& dir);

// The bytes of `files` under `dir`, in order, each checked against its
// digest (FailedPrecondition naming the file if it changed).
StatusOr<std::vector<std::string>> ReadVersionFiles(const std::filesystem::path& dir,
                                                    const std::vector<VersionFile>& files);

// A push's file list (the JSON object that Berth-Files-Length frames, REST
// push route): {"files": [{"name": "model.py", "size": 1234}, ...]}, the
// files' bytes following it back to back, `available` bytes in all. Checked
// as ValidateVersionFiles checks, before a byte of them is read, and the
// sizes must add up to `available`; InvalidArgument otherwise, saying why.
StatusOr<std::vector<PushedFile>> ParsePushedFiles(std::string_view json, uint64_t available);

// For a store that keeps files' bytes: InvalidArgument unless
// `files.contents` is empty (the record only) or holds exactly the
// record's files, each with bytes of its digest.
Status CheckVersionContents(const VersionRecord& record, const VersionFiles& files);

}  // namespace berth
