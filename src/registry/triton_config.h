// Reads a model directory's config.pbtxt, written for Triton Inference
// Server (protobuf text format), into Berth's ModelConfig, so that a Triton
// model repository serves as it is.
//
// Read: name, platform "onnxruntime_onnx" / backend "onnxruntime",
// max_batch_size, input/output (dims without the batch dimension, as Triton
// has them), version_policy, dynamic_batching (preferred sizes, queue delay),
// instance_group (CPU counts), parameters intra_op_thread_count and
// inter_op_thread_count, model_warmup (one sample of zero_data or
// random_data inputs, as the version's warm-up request). A field Berth
// cannot honour is never dropped silently: one whose absence would change
// answers (sequence_batching, ensemble_scheduling, reshape, ragged or shape
// tensors, GPU instances, another platform, warm-up data from files) is an
// error naming it; one that only tunes Triton (optimization,
// response_cache, ...) is a warning naming it.
#pragma once

#include <string>
#include <vector>

#include "core/model.h"
#include "core/model_config.h"
#include "core/status.h"
#include "registry/registry_store.h"
#include "registry/triton_model_config.pb.h"

namespace berth {

// The most a warm-up request in any config format (config.yaml's warmup,
// config.pbtxt's model_warmup) may ask for: warm-up requests are small, and
// a shape in a config must not make the server allocate without bound.
inline constexpr int kMaxWarmupCount = 1000;
inline constexpr int64_t kMaxWarmupInputBytes = 64ll << 20;

struct TritonConfig {
  ModelConfig config;
  std::vector<std::string> warnings;  // "line 12: 'optimization' is ignored: ..."
};

StatusOr<TritonConfig> ParseTritonConfig(const std::string& text);

// The same configuration in Triton's JSON form (the repository load's
// `config` parameter, and what GET /v2/models/{m}/config answers), with the
// same checks; a field the schema does not have is an error naming it.
// `text`, if not null, receives the configuration in the text form of a
// config.pbtxt.
StatusOr<TritonConfig> ParseTritonConfigJson(const std::string& json,
                                             std::string* text = nullptr);

// The configuration a loaded version runs with, in Triton's form (the model
// configuration extension: GET /v2/models/{m}/config, gRPC ModelConfig):
// its resolved signature with dims as Triton has them (no batch dimension
// when the model batches), policy, batching and instances.
triton::ModelConfig ToTritonConfig(const Model& model);

// The parameter of ToTritonConfig(model, store) that carries the version's
// feature names as the registry recorded them (its metadata's
// feature_names, the column order its one 2-D input takes): a JSON array
// of strings, "[]" when none are recorded. Absent when the server has no
// registry store, or could not read it: then no client can check a
// DataFrame's column order, and berth's Client refuses one rather than
// guess. Reading a configuration ignores it.
inline constexpr const char* kFeatureNamesParameter = "feature_names";

// ToTritonConfig(model) and kFeatureNamesParameter from `store` (may be
// null). The same for every door (REST config route, gRPC ModelConfig).
triton::ModelConfig ToTritonConfig(const Model& model, RegistryStore* store);

}  // namespace berth
