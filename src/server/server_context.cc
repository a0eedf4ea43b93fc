#include "server/server_context.h"

#include "registry/version_metadata.h"

#include <utility>

#include "core/model_name.h"
#include "registry/model_repository.h"

namespace berth {

Status ServerContext::RegisterSharedMemory(const std::string& name, const std::string& key,
                                           uint64_t offset, uint64_t byte_size) const {
  if (shared_memory == nullptr) {
    return Status::Unavailable("system shared memory is not available on this server");
  }
  return shared_memory->Register(name, key, offset, byte_size);
}

Status ServerContext::UnregisterSharedMemory(const std::string& name) const {
  if (shared_memory == nullptr) return Status::Ok();
  if (name.empty()) {
    shared_memory->UnregisterAll();
  } else {
    shared_memory->Unregister(name);
  }
  return Status::Ok();
}

Status ServerContext::LoadModel(std::string_view peer, const std::string& name,
                                std::vector<LoadParameter> parameters) const {
  RETURN_IF_ERROR(CheckChange(peer, name));
  ModelRepository::LoadOverride override;
  for (LoadParameter& p : parameters) {
    if (p.name == "config") {
      if (p.type != LoadParameter::Type::kString) {
        return Status::InvalidArgument(
            "load parameter 'config' must be a string: Triton's model configuration in JSON");
      }
      override.config_json = std::move(p.value);
    } else if (p.name.starts_with("file:")) {
      if (p.type != LoadParameter::Type::kBytes) {
        return Status::InvalidArgument("load parameter '" + PrintableExcerpt(p.name) +
                                       "' must be bytes (base64 in JSON)");
      }
      override.files[p.name.substr(5)] = std::move(p.value);
    } else {
      return Status::InvalidArgument("unknown load parameter '" + PrintableExcerpt(p.name) +
                                     "' (Triton's are 'config' and 'file:<version>/<path>')");
    }
  }
  // Triton's words first: tools match on them.
  return repository->LoadModel(name, override).WithContext("failed to load '" + name + "'");
}

namespace {

// Who changes an alias or a shadow and why, for the audit record.
AliasChange ChangeBy(std::string_view peer, const std::string& alias, const std::string& reason) {
  AliasChange change;
  change.alias = alias;
  change.actor = std::string(peer);
  change.reason = reason;
  return change;
}

}  // namespace

void ServerContext::RunChange(AdminExecutor::Task task) const {
  if (loader == nullptr) return task(Status::Ok());
  loader->Submit(std::move(task));
}

Status ServerContext::CheckChange(std::string_view, const std::string& name) const {
  return ValidateModelName(name);
}

StatusOr<AliasMove> ServerContext::Promote(std::string_view peer, const std::string& name,
                                           int64_t version, const std::string& alias,
                                           const std::string& reason) const {
  RETURN_IF_ERROR(CheckChange(peer, name));
  AliasMove move{version, std::nullopt};
  RETURN_IF_ERROR(
      repository->Promote(name, version, ChangeBy(peer, alias, reason), &move.previous));
  return move;
}

StatusOr<int64_t> ServerContext::Push(std::string_view actor, const std::string& name,
                                      const ArtifactSource& artifact,
                                      std::string_view metadata_json,
                                      bool allow_signature_change,
                                      std::string_view reason,
                                      std::string_view config) const {
  RETURN_IF_ERROR(CheckChange(actor, name));
  return repository->Push(name, artifact, metadata_json, std::string(actor),
                          allow_signature_change, reason, config);
}

StatusOr<AliasMove> ServerContext::SetShadow(std::string_view peer, const std::string& name,
                                             int64_t version, int percent,
                                             const std::string& reason) const {
  RETURN_IF_ERROR(CheckChange(peer, name));
  AliasMove move{version, std::nullopt};
  RETURN_IF_ERROR(repository->SetShadow(name, version, percent,
                                        ChangeBy(peer, std::string(kProductionAlias), reason),
                                        &move.previous));
  return move;
}

StatusOr<AliasMove> ServerContext::Split(std::string_view peer, const std::string& name,
                                         const std::vector<WeightedVersion>& split,
                                         const std::string& alias,
                                         const std::string& sticky_key,
                                         const std::string& reason) const {
  RETURN_IF_ERROR(CheckChange(peer, name));
  AliasMove move;
  AliasChange change = ChangeBy(peer, alias, reason);
  change.sticky_key = sticky_key;
  RETURN_IF_ERROR(repository->Split(name, split, std::move(change), &move.previous));
  // The split's heaviest version, as published.
  if (auto entry = models->Find(name)) {
    if (auto it = entry->aliases.find(alias); it != entry->aliases.end()) move.version = it->second;
  }
  return move;
}

Status ServerContext::AddEvaluation(std::string_view peer, const std::string& name,
                                    int64_t version, std::string_view evaluation_json) const {
  RETURN_IF_ERROR(CheckChange(peer, name));
  RegistryStore* store = repository->store();
  if (store == nullptr) return Status::Unavailable(kNoRegistryStore);
  ASSIGN_OR_RETURN(std::string evaluation, CheckEvaluation(evaluation_json));
  return store->AddEvaluation(name, version, evaluation, peer);
}

StatusOr<AliasMove> ServerContext::Rollback(std::string_view peer, const std::string& name,
                                            const std::string& alias,
                                            const std::string& reason) const {
  RETURN_IF_ERROR(CheckChange(peer, name));
  AliasMove move;
  ASSIGN_OR_RETURN(move.version,
                   repository->Rollback(name, ChangeBy(peer, alias, reason), &move.previous));
  return move;
}

Status ServerContext::SetVersionStatus(std::string_view peer, const std::string& name,
                                       int64_t version, VersionStatus to, bool force,
                                       const std::string& reason) const {
  RETURN_IF_ERROR(CheckChange(peer, name));
  AliasChange change = ChangeBy(peer, std::string(kProductionAlias), reason);
  change.force = force;
  return repository->SetVersionStatus(name, version, to, std::move(change));
}

Status ServerContext::UnloadModel(std::string_view peer, const std::string& name) const {
  RETURN_IF_ERROR(CheckChange(peer, name));
  return repository->UnloadModel(name);
}

bool ServerContext::IsReady() const {
  if (ready == nullptr || !ready->load()) return false;
  const std::vector<ModelEntry> table = models->List();
  bool required_ready = !serving_model_required;
  for (const ModelEntry& m : table) {
    // Ready to answer a request that names no version: production's version
    // if the alias is set, else the latest READY one.
    const VersionEntry* v = m.Default();
    const bool model_ready = v != nullptr && v->state == ModelState::kReady;
    if (!model_ready && strict_readiness) return false;
    // Without --default-model the platform routes answer with the only model,
    // or (SageMaker's multi-model mode) with the model a request names.
    if (model_ready && (required_model.empty() || m.name == required_model)) {
      required_ready = true;
    }
  }
  return required_ready;
}

}  // namespace berth
