#include "registry/repository_files.h"

#include <utility>

#include "core/model_manager.h"
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

}  // namespace berth
