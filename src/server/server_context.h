// What every protocol front end may reach of the core: a narrow set of
// pointers owned by the Server (server.h), valid for the front end's life.
#pragma once

#include <atomic>
#include <string>

#include "core/inference_service.h"
#include "core/model_manager.h"

namespace berth {

class ModelRepository;

struct ServerContext {
  const InferenceService* inference = nullptr;
  const ModelManager* models = nullptr;
  ModelRepository* repository = nullptr;  // explicit load/unload
  const std::atomic<bool>* ready = nullptr;  // server-level readiness
  bool strict_readiness = true;  // ready only if every model has a READY version
  std::string version;

  // Live: the process answers. Ready: models loaded (see strict_readiness)
  // and not shutting down.
  bool IsReady() const;
};

}  // namespace berth
