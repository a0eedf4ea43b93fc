// Fuzz target: a push's file list (ParsePushedFiles, the JSON that
// Berth-Files-Length frames) and the stores' file column read back
// (ParseVersionFilesJson). The first 8 bytes, when present, are the byte
// count said to follow the list. Beyond not crashing: every refusal is
// INVALID_ARGUMENT, and an accepted list is within the bounds, its names
// stay inside the version's directory, and its files tile the bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "registry/version_files.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

void CheckName(const std::string& name) {
  const std::filesystem::path path(name);
  if (path.empty() || path.is_absolute()) Fail("an empty or absolute name");
  for (const auto& part : path) {
    if (part == ".." || part == "." || part.empty()) Fail("a name part that is not plain");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint64_t available = 0;
  if (size >= sizeof(available)) {
    std::memcpy(&available, data, sizeof(available));
    available %= uint64_t{1} << 34;
    data += sizeof(available);
    size -= sizeof(available);
  }
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto files = berth::ParsePushedFiles(json, available);
  if (!files.ok()) {
    if (files.status().code() != berth::Status::Code::kInvalidArgument) {
      Fail("a bad file list must be INVALID_ARGUMENT: " + files.status().ToString());
    }
  } else {
    if (files->empty() || files->size() > berth::kMaxVersionFiles) Fail("a file count off bounds");
    uint64_t offset = 0;
    for (const berth::PushedFile& f : *files) {
      CheckName(f.name);
      if (f.offset != offset) Fail("files that do not follow each other");
      offset += f.size;
    }
    if (offset != available) Fail("files that do not cover the bytes");
  }
  auto stored = berth::ParseVersionFilesJson(json);
  if (!stored.ok() && stored.status().code() != berth::Status::Code::kInvalidArgument) {
    Fail("a bad file column must be INVALID_ARGUMENT: " + stored.status().ToString());
  }
  if (stored.ok()) {
    for (const berth::VersionFile& f : *stored) CheckName(f.name);
  }
  return 0;
}
