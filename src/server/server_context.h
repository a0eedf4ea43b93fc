// What every protocol front end may reach of the core: a narrow set of
// pointers owned by the Server (server.h), valid for the front end's life.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/admin_executor.h"
#include "core/inference_service.h"
#include "core/model_manager.h"
#include "core/model_statistics.h"
#include "core/shared_memory.h"
#include "registry/artifact_digest.h"
#include "registry/registry_store.h"

namespace berth {

class MemoryBudget;
class Metrics;
class ModelRepository;
class PythonWorkerStats;
class StoreSync;
namespace drift {
class DriftMonitor;
}
namespace feedback {
class FeedbackMonitor;
}
namespace logs {
class Logs;
}
namespace alerts {
class AlertManager;
}

// One parameter of a repository load request, as its door read it.
struct LoadParameter {
  enum class Type { kString, kBytes, kOther };
  std::string name;
  Type type = Type::kOther;
  std::string value;  // kString: the text; kBytes: the bytes (REST: base64-decoded)
};
namespace auth {
class Authorizer;
}

// What an alias move did: the version the alias points at now, and before.
struct AliasMove {
  int64_t version = 0;
  std::optional<int64_t> previous;
};

struct ServerContext {
  const InferenceService* inference = nullptr;
  const ModelManager* models = nullptr;
  const StatisticsSource* statistics = nullptr;  // the statistics extension's counters
  const Metrics* metrics = nullptr;  // the shadow comparison, for a model's registry status
  ModelRepository* repository = nullptr;  // explicit load/unload
  const MemoryBudget* memory_budget = nullptr;  // --memory-budget, for /metrics
  // The system shared-memory regions: read by the status routes and
  // /metrics; changed only through (Un)RegisterSharedMemory.
  SharedMemoryRegistry* shared_memory = nullptr;
  drift::DriftMonitor* drift = nullptr;  // the drift gauges, for /metrics
  // Accuracy from ground truth: its gauges and counters, for /metrics.
  feedback::FeedbackMonitor* feedback = nullptr;
  const PythonWorkerStats* python_workers = nullptr;  // worker restarts, for /metrics
  const logs::Logs* logs = nullptr;      // the logs' counters, for /metrics
  // Told of each request a door refuses before the core (server/refusal_log.h):
  // the access log. May be null.
  InferenceObserver* refusals = nullptr;
  const alerts::AlertManager* alerts = nullptr;  // the alert series, for /metrics
  const std::atomic<bool>* ready = nullptr;  // server-level readiness
  // With a PostgreSQL store: whether this replica can read it
  // (StoreSync::Health), for readiness detail and /metrics; null otherwise.
  const StoreSync* store_sync = nullptr;
  bool strict_readiness = true;  // ready only if every model has a READY version
  // In a cloud platform's mode its predict route needs a model to answer:
  // serving_model_required is set, and required_model names the model
  // (--default-model) or is empty for "any model" (the only one, or in
  // SageMaker's multi-model mode the one a request names).
  bool serving_model_required = false;
  std::string required_model;
  std::string version;
  // Who may do what (--require-auth, API keys, the loopback-only admin
  // check): every route and RPC passes it before its handler runs, so the
  // changes below no longer check the caller themselves. The /v2/keys
  // routes manage keys through it.
  auth::Authorizer* authorizer = nullptr;
  // The thread that runs the changes below which load or unload a model
  // (core/admin_executor.h); null (tests): they run on the caller's thread.
  AdminExecutor* loader = nullptr;

  // Live: the process answers. Ready: the server answers what its routes
  // promise, so a load balancer may send it traffic. That is: not shutting
  // down; with strict_readiness every model in the table has a READY
  // version; and in a platform's mode (serving_model_required) the model
  // its predict route uses has one. A plain server with no model at all is
  // ready (as Triton with an empty repository: it serves the repository
  // API); a platform server with no model is not, since its predict route
  // could only refuse. Every health route (v2 REST and gRPC, SageMaker
  // /ping, Vertex and Azure) answers with this one function.
  bool IsReady() const;

  // The repository API, shared by every door so that each applies the same
  // checks in the same order: the name (ValidateModelName), then the
  // request's parameters, then the repository. The caller's right to change
  // what is served was checked before (auth::Authorizer, scope admin).
  // `actor` is who asks, for the audit log: the API key's name, or the
  // client's IP address as text ("127.0.0.1", "::1") when no key was read
  // (auth::Decision::actor). `parameters` are Triton's load parameters:
  // `config` (a string, Triton's model configuration in JSON) and
  // `file:<version>/<path>` (bytes), as ModelRepository::LoadModel(name,
  // override) takes them; any other is InvalidArgument. Failures start with
  // Triton's "failed to load '<name>'".
  Status LoadModel(std::string_view peer, const std::string& name,
                   std::vector<LoadParameter> parameters) const;
  Status UnloadModel(std::string_view peer, const std::string& name) const;
  // The registry's alias moves (registry/model_repository.h); the audit
  // record names `actor`.
  StatusOr<AliasMove> Promote(std::string_view peer, const std::string& name, int64_t version,
                              const std::string& alias, const std::string& reason) const;
  // Registers a new version from an artifact's bytes (ModelRepository::Push);
  // `reason` goes into its audit record; `config`, if not empty, is the
  // model's config file the push carries.
  StatusOr<int64_t> Push(std::string_view peer, const std::string& name,
                         const ArtifactSource& artifact,
                         std::string_view metadata_json, bool allow_signature_change,
                         std::string_view reason = {}, std::string_view config = {}) const;
  StatusOr<AliasMove> SetShadow(std::string_view peer, const std::string& name, int64_t version,
                                int percent, const std::string& reason) const;
  // `sticky_key`: the header whose value picks the version (empty:
  // Berth-Routing-Key).
  StatusOr<AliasMove> Split(std::string_view peer, const std::string& name,
                            const std::vector<WeightedVersion>& split, const std::string& alias,
                            const std::string& sticky_key, const std::string& reason) const;
  // Archives, restores or deletes a version (ModelRepository::SetVersionStatus;
  // `force` lets it take the model's last serving version away).
  Status SetVersionStatus(std::string_view peer, const std::string& name, int64_t version,
                          VersionStatus to, bool force, const std::string& reason) const;
  // Records an evaluation of a version (RegistryStore::AddEvaluation), its
  // body checked by CheckEvaluation (registry/version_metadata.h).
  Status AddEvaluation(std::string_view peer, const std::string& name, int64_t version,
                       std::string_view evaluation_json) const;
  StatusOr<AliasMove> Rollback(std::string_view peer, const std::string& name,
                               const std::string& alias, const std::string& reason) const;
  // The system shared-memory extension's changes, for every door (the
  // caller's right was checked before: scope admin, so loopback only without
  // --require-auth, since a registration lets requests read and write that
  // memory): SharedMemoryRegistry::Register / Unregister; an empty `name`
  // unregisters every region.
  Status RegisterSharedMemory(const std::string& name, const std::string& key, uint64_t offset,
                              uint64_t byte_size) const;
  Status UnregisterSharedMemory(const std::string& name) const;
  // Runs `task` on `loader` (its contract: exactly once, admitted or
  // refused 503), or at once if there is none. Every door hands the changes
  // that load or unload (LoadModel, UnloadModel, Push, Promote, Split,
  // SetShadow, Rollback, SetVersionStatus) to it and answers from the task,
  // so that a load never holds a network thread.
  void RunChange(AdminExecutor::Task task) const;
  // ValidateModelName: what every change checks first.
  Status CheckChange(std::string_view actor, const std::string& name) const;
};

}  // namespace berth
