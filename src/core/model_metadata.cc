#include "core/model_metadata.h"

namespace berth {

const std::vector<std::string>& ServerExtensions() {
  static const std::vector<std::string> extensions = {"model_repository", "model_configuration",
                                                      "binary_tensor_data", "statistics",
                                                      "system_shared_memory"};
  return extensions;
}

StatusOr<ModelMetadata> GetModelMetadata(const ModelManager& models, std::string_view name,
                                         std::string_view selector) {
  ASSIGN_OR_RETURN(ModelHandle model, models.Resolve(name, selector));
  ModelMetadata out;
  out.name = model->name;
  out.platform = model->platform;
  out.inputs = model->signature.inputs;
  out.outputs = model->signature.outputs;
  std::optional<ModelEntry> entry;
  if (selector.empty()) entry = models.Find(name);
  if (entry) {
    for (const VersionEntry& v : entry->versions) {
      if (v.state == ModelState::kReady) out.versions.push_back(std::to_string(v.version));
    }
  } else {
    out.versions.push_back(std::to_string(model->version));
  }
  return out;
}

std::vector<IndexEntry> RepositoryIndex(const std::vector<ModelEntry>& models, bool ready_only) {
  std::vector<IndexEntry> out;
  for (const ModelEntry& m : models) {
    if (m.versions.empty() && !ready_only) {
      out.push_back({m.name, std::string(), ModelState::kUnavailable, m.reason});
    }
    for (const VersionEntry& v : m.versions) {
      if (ready_only && v.state != ModelState::kReady) continue;
      out.push_back({m.name, std::to_string(v.version), v.state, v.reason});
    }
  }
  return out;
}

}  // namespace berth
