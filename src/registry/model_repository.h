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
#include <mutex>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/model_manager.h"
#include "core/status.h"
#include "core/thread_annotations.h"

namespace berth {

class ModelRepository {
 public:
  // `factories` maps a config's `backend:` value to its factory (not owned).
  ModelRepository(std::filesystem::path root, std::map<std::string, BackendFactory*> factories,
                  ModelManager* manager);

  // Loads every model directory under the root. Fails only if the root itself
  // cannot be read.
  Status LoadAll();

  // Loads (or reloads) one model directory and publishes the result. A
  // reload that yields no READY version while the model has one leaves the
  // serving versions in place and returns FailedPrecondition with the reason:
  // a broken upload never takes a working model down.
  Status LoadModel(const std::string& name) LOCKS_EXCLUDED(mu_);

  // Takes a model out of service: it leaves the manager's table (and so the
  // index and readiness) until LoadModel() brings it back. Requests already
  // holding a version finish on it. NotFound if the model is not loaded.
  Status UnloadModel(const std::string& name) LOCKS_EXCLUDED(mu_);

  // Brings the served models in line with the directory: loads new model
  // directories, reloads those whose files changed (config, version
  // directories, model files: names, sizes, modification times) and unloads
  // those removed. Returns the number of models it acted on.
  int Poll() LOCKS_EXCLUDED(mu_);

  const std::filesystem::path& root() const { return root_; }

 private:
  // The bodies of LoadAll() and Poll(); those catch what escapes them, so
  // that nothing the repository's contents do can end the process.
  Status LoadAllOrThrow();
  int PollOrThrow() LOCKS_EXCLUDED(mu_);
  Status LoadModelLocked(const std::string& name) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `message` without the repository root's path: clients see paths relative
  // to the repository, never where it sits on the server.
  std::string Scrub(std::string message) const;
  ModelEntry Load(const std::string& name);
  // A summary of what on disk makes up `name`; changes when any file does.
  std::string Fingerprint(const std::string& name) const;
  std::vector<std::string> ModelDirectories(std::error_code* ec) const;
  VersionEntry LoadVersion(const ModelConfig& config, BackendFactory* factory, int64_t version);

  const std::filesystem::path root_;
  const std::map<std::string, BackendFactory*> factories_;
  ModelManager* const manager_;
  // Serialises loads, unloads and polls, so that two of them never race to
  // publish the same model.
  std::mutex mu_;
  std::map<std::string, std::string> fingerprints_ GUARDED_BY(mu_);
};

}  // namespace berth
