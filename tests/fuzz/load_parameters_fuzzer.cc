// Fuzz target: Triton's repository load parameters as a client sends them:
// `config` (ParseTritonConfigJson) and a `file:` name (ParseLoadFileName),
// the input split at its first NUL. Beyond not crashing, every refusal is
// INVALID_ARGUMENT and a file name that is accepted stays inside its
// version's directory.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "registry/repository_files.h"
#include "registry/triton_config.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string json(input.substr(0, split));
  const std::string_view name =
      split == std::string_view::npos ? std::string_view() : input.substr(split + 1);

  std::string text;
  auto config = berth::ParseTritonConfigJson(json, &text);
  if (!config.ok() && config.status().code() != berth::Status::Code::kInvalidArgument) {
    Fail("a bad config must be INVALID_ARGUMENT: " + config.status().ToString());
  }
  if (config.ok() && config->config.max_batch_size < 0) Fail("negative max_batch_size");

  auto file = berth::ParseLoadFileName(name);
  if (!file.ok()) {
    if (file.status().code() != berth::Status::Code::kInvalidArgument) {
      Fail("a bad file name must be INVALID_ARGUMENT: " + file.status().ToString());
    }
    return 0;
  }
  if (file->version < 1) Fail("a version below 1");
  if (file->relative.empty() || file->relative.is_absolute()) Fail("an empty or absolute path");
  for (const auto& part : file->relative) {
    if (part == ".." || part == "." || part.empty()) Fail("a path part that is not a plain name");
  }
  return 0;
}
