#include "registry/repository_files.h"

#include <utility>

#include "core/model_manager.h"
#include "core/model_name.h"
#include "registry/artifact_digest.h"
#include "registry/config_parser.h"

namespace berth {
namespace fs = std::filesystem;

StatusOr<BackendFactory*> FactoryFor(const std::map<std::string, BackendFactory*>& factories,
                                     const ModelConfig& config, const std::string& model) {
  auto factory = factories.find(config.backend);
  if (factory == factories.end()) {
    return Status::FailedPrecondition("model '" + model + "' has unknown backend '" +
                                      config.backend + "'");
  }
  return factory->second;
}

bool ParseVersionDir(const std::string& name, int64_t* version) {
  StatusOr<int64_t> parsed = ParseVersionNumber(name);
  if (parsed.ok()) *version = *parsed;
  return parsed.ok();
}

std::string FormatOf(const Model& model) {
  return model.platform == "onnxruntime_onnx" ? "onnx" : model.platform;
}

std::optional<StoredConfig> ReadConfigFile(const fs::path& dir) {
  for (const char* name : kConfigFileNames) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / name, ec)) continue;
    auto bytes = ReadFileBytes(dir / name);
    if (bytes.ok()) return StoredConfig{name, std::move(bytes).value()};
  }
  return std::nullopt;
}

std::string RelativePathProblem(std::string_view path) {
  if (path.size() > 1024) return "the name is longer than 1024 bytes";
  if (path.find('\0') != std::string_view::npos || path.find('\\') != std::string_view::npos) {
    return "the name holds a NUL or a backslash";
  }
  int components = 0;
  while (true) {
    const size_t next = path.find('/');
    const std::string_view part = path.substr(0, next);
    if (part.empty() || part == "." || part == "..") {
      return "each part of the path must be a plain name (no empty part, '.' or '..')";
    }
    if (part.size() > 255) return "a part of the path is longer than 255 bytes";
    if (++components > 16) return "the path is more than 16 levels deep";
    if (next == std::string_view::npos) return "";
    path.remove_prefix(next + 1);
  }
}

StatusOr<LoadFile> ParseLoadFileName(std::string_view name) {
  const std::string shown = PrintableExcerpt(name);
  auto refuse = [&shown](const std::string& why) {
    return Status::InvalidArgument("load parameter 'file:" + shown + "': " + why);
  };
  if (name.size() > 1024) return refuse("the name is longer than 1024 bytes");
  if (name.find('\0') != std::string_view::npos || name.find('\\') != std::string_view::npos) {
    return refuse("the name holds a NUL or a backslash");
  }
  const size_t slash = name.find('/');
  LoadFile out;
  if (slash == std::string_view::npos ||
      !ParseVersionDir(std::string(name.substr(0, slash)), &out.version)) {
    return refuse("it must be file:<version>/<path>, the version a positive integer");
  }
  const std::string_view rest = name.substr(slash + 1);
  if (const std::string why = RelativePathProblem(rest); !why.empty()) return refuse(why);
  out.relative = std::string(rest);
  return out;
}

}  // namespace berth
