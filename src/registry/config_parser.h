// Parses a model's config.yaml / config.json into a ModelConfig.
//
// One schema, validated strictly: an unknown key is an error that names it,
// and so is a value of the wrong type or range. JSON is read by the same
// parser, as YAML is a superset of it.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "backends/backend.h"
#include "core/model_config.h"
#include "core/status.h"

namespace berth {

StatusOr<ModelConfig> ParseModelConfig(const std::string& text);

// Parses the server's alerts file (--alerts; docs/monitoring.md#alerts):
// `webhook:` and `rules:`, each rule as in a model config's `alerts:` plus
// an optional `model`. Errors name the field (`rules[2].window`).
StatusOr<AlertsFile> ParseAlertsFile(const std::string& text);
// Reads and parses `path`; errors start with the path.
StatusOr<AlertsFile> LoadAlertsFile(const std::filesystem::path& path);

// The names a model's config file may have, in the order they are looked for.
inline constexpr const char* kConfigFileNames[] = {"config.yaml", "config.yml", "config.json",
                                                   "config.pbtxt"};
bool IsConfigFileName(std::string_view name);

// Reads <model_dir>/config.yaml, config.yml or config.json (exactly one must
// exist). A missing `name` defaults to the directory name; a different one is
// an error.
StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& model_dir);

// Reconciles the config's declarations with what the model file declares.
// Empty declarations take the file's; given ones must name the same tensors
// with the same datatypes and shapes that agree (a config may fix a variable
// dimension, never contradict a fixed one). With max_batch_size > 0 the first
// dimension of every input must be variable.
StatusOr<ModelSignature> ResolveSignature(const ModelConfig& config,
                                          const ModelSignature& from_file);

}  // namespace berth
