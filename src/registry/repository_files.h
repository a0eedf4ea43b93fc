// What a model directory of the repository holds, as the loader and the push
// path both read it: version directory names, the config file, the backend a
// config names, and the format a loaded version records. Internal to
// registry/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "backends/backend.h"
#include "core/model.h"
#include "core/model_config.h"
#include "core/status.h"
#include "registry/registry_store.h"

namespace berth {

// The factory of `config`'s backend; FailedPrecondition naming `model` if
// the server has none.
StatusOr<BackendFactory*> FactoryFor(const std::map<std::string, BackendFactory*>& factories,
                                     const ModelConfig& config, const std::string& model);

// A version directory is named as a request names a version
// (ParseVersionNumber: "3", not "03"); other entries are not versions.
bool ParseVersionDir(const std::string& name, int64_t* version);

// The record's "format": "onnx" for ONNX Runtime's models.
std::string FormatOf(const Model& model);

// The model directory's config file, for a store that keeps it beside the
// artifacts; nullopt if there is none (LoadModelConfig says why later).
std::optional<StoredConfig> ReadConfigFile(const std::filesystem::path& dir);

// Why `path` is not a plain relative path inside a directory, or "": 1 to
// 16 '/'-separated components, each a plain name (not empty, "." or "..",
// no NUL or '\\', at most 255 bytes), 1,024 bytes in all. An absolute path
// or one that climbs out of the directory is refused by these rules.
std::string RelativePathProblem(std::string_view path);

// One file of a repository load's `file:<version>/<path>` parameters.
struct LoadFile {
  int64_t version = 0;
  std::filesystem::path relative;  // within the version's directory
};
// `name` without its "file:" prefix. InvalidArgument unless it is
// "<version>/<path>": a version directory's name (ParseVersionDir), then a
// path RelativePathProblem accepts.
StatusOr<LoadFile> ParseLoadFileName(std::string_view name);

}  // namespace berth
