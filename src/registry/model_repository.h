// ModelRepository: a directory of models, loaded into a ModelManager.
//
//   <root>/<model>/config.yaml|config.json
//   <root>/<model>/<version>/model.onnx        (version: a positive integer)
//
// A model that fails to load is published as UNAVAILABLE with the reason; it
// never stops the others from loading.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "backends/backend.h"
#include "core/model_manager.h"
#include "core/status.h"

namespace berth {

class ModelRepository {
 public:
  // `factories` maps a config's `backend:` value to its factory (not owned).
  ModelRepository(std::filesystem::path root, std::map<std::string, BackendFactory*> factories,
                  ModelManager* manager);

  // Loads every model directory under the root. Fails only if the root itself
  // cannot be read.
  Status LoadAll();

  // Loads (or reloads) one model directory and publishes the result.
  Status LoadModel(const std::string& name);

  // Takes a model out of service: it leaves the manager's table (and so the
  // index and readiness) until LoadModel() brings it back. Requests already
  // holding a version finish on it. NotFound if the model is not loaded.
  Status UnloadModel(const std::string& name);

  const std::filesystem::path& root() const { return root_; }

 private:
  ModelEntry Load(const std::string& name);
  VersionEntry LoadVersion(const ModelConfig& config, BackendFactory* factory, int64_t version);

  const std::filesystem::path root_;
  const std::map<std::string, BackendFactory*> factories_;
  ModelManager* const manager_;
};

}  // namespace berth
