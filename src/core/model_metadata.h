// What the metadata, readiness and repository index calls answer, assembled
// once for every front end: REST (server/http/v2_json_codec) and gRPC
// (server/grpc/grpc_codec) only serialise these structs, so the two cannot
// disagree on which versions a model lists or which entries an index holds.
// Pure functions of the model table's contents; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/model_manager.h"
#include "core/status.h"
#include "core/tensor.h"

namespace berth {

// The v2 model metadata: {name, versions, platform, inputs, outputs}.
struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;  // decimal version numbers
  std::string platform;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

// Resolves `name` and `selector` as an inference request would
// (ModelManager::Resolve, same errors) and describes the version found. With
// a selector, `versions` lists that version only; without one, every READY
// version of the model.
// The protocol extensions the server metadata call lists, the same at every
// door (Triton's names).
const std::vector<std::string>& ServerExtensions();

StatusOr<ModelMetadata> GetModelMetadata(const ModelManager& models, std::string_view name,
                                         std::string_view selector);

// One row of the repository index.
struct IndexEntry {
  std::string name;
  std::string version;  // empty for a model that has no version at all
  ModelState state = ModelState::kUnavailable;
  std::string reason;
};

// Every version of every model in `models` with its state and reason (only
// READY ones if `ready_only`), in the order given. A model with no version
// at all is listed once, without a version, as UNAVAILABLE with the
// model-level reason (unless `ready_only`).
std::vector<IndexEntry> RepositoryIndex(const std::vector<ModelEntry>& models, bool ready_only);

}  // namespace berth
