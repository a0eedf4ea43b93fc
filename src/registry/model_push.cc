// ModelRepository's push path (registry/model_repository.h): a new version
// staged, trial-loaded against the serving signature, registered and renamed
// into place; the rest of the class is in model_repository.cc.
#include "registry/model_repository.h"

#include <algorithm>
#include <system_error>

#include "core/logging.h"
#include "core/model_name.h"
#include "registry/artifact_digest.h"
#include "registry/config_parser.h"
#include "registry/repository_files.h"
#include "registry/version_files.h"
#include "registry/version_metadata.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

// Empty if `a` and `b` take and give the same tensors, else what differs.
std::string SignatureDifference(const ModelSignature& a, const ModelSignature& b) {
  const auto describe = [](const std::vector<TensorSpec>& specs) {
    std::string out;
    for (const auto& s : specs) {
      out += (out.empty() ? "" : ", ") + s.name + ":" + std::string(DataTypeName(s.datatype)) +
             ShapeToString(s.shape);
    }
    return "[" + out + "]";
  };
  if (a.inputs != b.inputs) {
    return "inputs " + describe(b.inputs) + " instead of " + describe(a.inputs);
  }
  if (a.outputs != b.outputs) {
    return "outputs " + describe(b.outputs) + " instead of " + describe(a.outputs);
  }
  return "";
}

// Writes a push's files into `staging`, each fsynced with its directory.
Status WritePushedFiles(const ArtifactSource& artifact, const fs::path& staging) {
  for (const PushedFile& f : artifact.files) {
    const fs::path path = staging / f.name;
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) return Status::Internal("cannot create a directory of the version: " + ec.message());
    RETURN_IF_ERROR(artifact.in_file() ? CopyFileTailDurably(artifact.file,
                                                             artifact.offset + f.offset, path,
                                                             f.size)
                                       : WriteFileDurably(path, artifact.bytes.substr(f.offset,
                                                                                      f.size)));
    if (path.parent_path() != staging) RETURN_IF_ERROR(SyncDirectory(path.parent_path()));
  }
  return Status::Ok();
}

// `text` without the white space that ends it: two config files that
// differ only there are the same config.
std::string_view TrimEnd(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' ||
                           text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// The config a push carries, checked as the loader checks
// <name>/config.yaml: UTF-8 text, the one strict schema, named after the
// model or not named, and of a backend this server has.
StatusOr<ModelConfig> CheckPushedConfig(std::string_view text, const std::string& name,
                                        const std::map<std::string, BackendFactory*>& factories) {
  if (text.size() > (1u << 20)) return Status::InvalidArgument("the pushed config is over 1 MiB");
  if (!IsValidUtf8(text) || text.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("the pushed config must be UTF-8 text without NUL bytes");
  }
  StatusOr<ModelConfig> config = ParseModelConfig(std::string(text));
  if (!config.ok()) return config.status().WithContext("the pushed config");
  if (!config->name.empty() && config->name != name) {
    return Status::InvalidArgument("the pushed config names model '" +
                                   PrintableExcerpt(config->name) + "', not '" + name + "'");
  }
  config->name = name;
  RETURN_IF_ERROR(FactoryFor(factories, *config, name).status().WithContext("the pushed config"));
  return config;
}

}  // namespace

StatusOr<int64_t> ModelRepository::Push(const std::string& name, std::string_view artifact,
                                        std::string_view metadata_json, const std::string& actor,
                                        bool allow_signature_change, std::string_view reason,
                                        std::string_view config) {
  ArtifactSource source;
  source.bytes = artifact;
  return Push(name, source, metadata_json, actor, allow_signature_change, reason, config);
}

StatusOr<int64_t> ModelRepository::Push(const std::string& name, const ArtifactSource& source,
                                        std::string_view metadata_json, const std::string& actor,
                                        bool allow_signature_change, std::string_view reason,
                                        std::string_view config) {
  RETURN_IF_ERROR(ValidateModelName(name));
  if (store_ == nullptr) {
    return Status::Unavailable(kNoRegistryStore);
  }
  if (!config.empty()) RETURN_IF_ERROR(CheckPushedConfig(config, name, factories_).status());
  std::string held;  // a store that keeps artifacts' bytes takes them from memory
  ArtifactSource artifact = source;
  if (!artifact.files.empty()) {
    std::vector<VersionFile> files;
    for (const PushedFile& f : artifact.files) {
      files.push_back({f.name, "", static_cast<int64_t>(std::min<uint64_t>(f.size, INT64_MAX))});
    }
    RETURN_IF_ERROR(ValidateVersionFiles(files));
  }
  if (artifact.in_file()) {
    std::error_code ec;
    const uint64_t size = fs::file_size(artifact.file, ec);
    if (ec || (size <= artifact.offset && artifact.files.empty())) {
      return Status::InvalidArgument("the pushed artifact is empty");
    }
    if (store_->HoldsArtifacts()) {
      ASSIGN_OR_RETURN(held, ReadFileBytes(artifact.file));
      artifact.bytes = std::string_view(held).substr(artifact.offset);
      artifact.file.clear();
    }
  } else if (artifact.bytes.empty() && artifact.files.empty()) {
    return Status::InvalidArgument("the pushed artifact is empty");
  }
  std::string metadata = "{}";
  if (!metadata_json.empty()) {
    ASSIGN_OR_RETURN(metadata, CheckVersionMetadata(metadata_json));
  }
  std::lock_guard lock(mu_);
  try {
    return PushLocked(name, artifact, metadata, actor, allow_signature_change, reason, config);
  } catch (const std::exception& e) {
    return Status::Internal(Scrub("failed to push to '" + name + "': " + e.what()));
  }
}

StatusOr<int64_t> ModelRepository::PushLocked(const std::string& name,
                                              const ArtifactSource& artifact,
                                              std::string_view metadata_json,
                                              const std::string& actor,
                                              bool allow_signature_change,
                                              std::string_view reason,
                                              std::string_view config) {
  const fs::path dir = root_ / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    // A new model: staged whole in a hidden directory, published by rename
    // only once its first version has loaded. Its config is the pushed one,
    // else the defaults.
    const fs::path staged_model = root_ / (".push-model-" + name);
    fs::remove_all(staged_model, ec);
    fs::create_directories(staged_model, ec);
    if (ec) return Status::Internal("cannot create the model's directory: " + ec.message());
    const std::string text = config.empty() ? "{}\n" : std::string(TrimEnd(config)) + "\n";
    // Read as the model's: the staged directory has another name (a pushed
    // config may say `name: <model>`).
    StatusOr<ModelConfig> parsed = CheckPushedConfig(text, name, factories_);
    Status written = parsed.ok() ? WriteFileDurably(staged_model / "config.yaml", text)
                                 : parsed.status();
    StatusOr<int64_t> version =
        written.ok()
            ? PushInto(name, staged_model, *parsed, artifact, metadata_json, actor, false, reason)
            : StatusOr<int64_t>(written);
    if (version.ok()) {
      fs::rename(staged_model, dir, ec);
      if (ec) version = Status::Internal("cannot publish the new model: " + ec.message());
    }
    if (!version.ok()) {
      fs::remove_all(staged_model, ec);
      return version;
    }
    RETURN_IF_ERROR(SyncDirectory(root_));
    RETURN_IF_ERROR(RecordPushed(name, *version));
    RETURN_IF_ERROR(LoadModelLocked(name, nullptr, nullptr));
    return version;
  }
  if (!config.empty()) {
    // The model's config stays as it is: a push may only repeat it.
    const std::optional<StoredConfig> current = ReadConfigFile(dir);
    if (!current || TrimEnd(current->bytes) != TrimEnd(config)) {
      const std::string file = name + "/" + (current ? current->name : "config.yaml");
      return Status::Aborted(
          "the pushed config differs from model '" + name + "''s config (" + file +
          "); a push never changes a serving model's config: push without a config (or with " +
          "the model's own), change " + file + " in the model repository (the server reloads it), " +
          "or push under a new model name");
    }
  }
  ASSIGN_OR_RETURN(ModelConfig current, LoadModelConfig(dir));
  ASSIGN_OR_RETURN(int64_t version,
                   PushInto(name, dir, current, artifact, metadata_json, actor,
                            allow_signature_change, reason));
  RETURN_IF_ERROR(RecordPushed(name, version));
  RETURN_IF_ERROR(LoadModelLocked(name, nullptr, nullptr));
  return version;
}

Status ModelRepository::RecordPushed(const std::string& name, int64_t version) {
  // Recorded now, whether or not the version policy loads it: its record
  // (and its number) must not depend on its serving. A crash before this
  // leaves the version on disk, recorded when it loads.
  if (store_->HoldsArtifacts()) return Status::Ok();  // RegisterPushed did, with the bytes
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(root_ / name));
  ASSIGN_OR_RETURN(BackendFactory* factory, FactoryFor(factories_, config, name));
  ASSIGN_OR_RETURN(VersionRecord record, RecordFromFiles(name, version, *factory, config));
  return store_->RegisterVersion(record, record.created_by);
}

StatusOr<int64_t> ModelRepository::PushInto(const std::string& name, const fs::path& dir,
                                            const ModelConfig& config,
                                            const ArtifactSource& artifact,
                                            std::string_view metadata_json,
                                            const std::string& actor,
                                            bool allow_signature_change,
                                            std::string_view reason) {
  std::error_code ec;
  ASSIGN_OR_RETURN(BackendFactory* factory, FactoryFor(factories_, config, name));
  // The next number the model has never used: neither on disk nor in the
  // store (a version removed from disk keeps its number).
  int64_t version = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    int64_t v = 0;
    if (ParseVersionDir(it->path().filename().string(), &v)) version = std::max(version, v);
  }
  ASSIGN_OR_RETURN(std::vector<VersionRecord> known, store_->Versions(name));
  for (const VersionRecord& r : known) version = std::max(version, r.version);
  ++version;

  const fs::path staging = dir / (".push-" + std::to_string(version));
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return Status::Internal("cannot create a staging directory: " + ec.message());
  const fs::path file = staging / factory->ModelFileFor(config);
  // The artifact: written from memory, or copied from an upload streamed to
  // disk (then hashed as written); or the files of a version's directory,
  // the model file among them.
  ArtifactDigest digest;
  Status written;
  if (!artifact.files.empty()) {
    written = WritePushedFiles(artifact, staging);
    if (written.ok() && !fs::is_regular_file(file, ec)) {
      written = Status::InvalidArgument("the pushed files have no '" +
                                        factory->ModelFileFor(config) +
                                        "', the file the model's config loads");
    }
    if (written.ok()) {
      StatusOr<ArtifactDigest> hashed = Sha256File(file);
      if (hashed.ok()) digest = *hashed;
      else written = hashed.status();
    }
  } else if (artifact.in_file()) {
    written = CopyFileTailDurably(artifact.file, artifact.offset, file);
    if (written.ok()) {
      StatusOr<ArtifactDigest> hashed = Sha256File(file);
      if (hashed.ok()) digest = *hashed;
      else written = hashed.status();
    }
  } else {
    digest = Sha256Bytes(artifact.bytes);
    written = WriteFileDurably(file, artifact.bytes);
  }
  VersionRecord pushed;
  pushed.model = name;
  pushed.version = version;
  pushed.digest = digest.digest;
  pushed.size = digest.size;
  pushed.source = "push";
  pushed.created_by = PrintableExcerpt(actor, 256);
  pushed.reason = std::string(reason);
  pushed.metadata_json = metadata_json.empty() ? "{}" : std::string(metadata_json);
  if (written.ok() && (!artifact.files.empty() || config.backend == "python")) {
    // A version that is a directory is recorded file by file.
    StatusOr<std::vector<VersionFile>> listed = ListVersionFiles(staging);
    if (listed.ok()) pushed.files = std::move(listed).value();
    else written = listed.status();
  }
  if (written.ok()) written = WriteFileDurably(staging / kVersionRecordFile, VersionRecordJson(pushed));
  if (written.ok()) written = SyncDirectory(staging);
  if (!written.ok()) {
    fs::remove_all(staging, ec);
    return written;
  }
  // A trial load before the version is visible: a corrupt artifact or one
  // that does not match the model's signature never reaches the table.
  VersionEntry trial = LoadVersionFiles(config, factory, version, staging);
  std::string refusal;
  if (trial.failure == LoadFailure::kMemoryBudget) {
    fs::remove_all(staging, ec);
    return Status::ResourceExhausted("version " + std::to_string(version) + " of model '" + name +
                                     "' was not stored: " + trial.reason);
  }
  if (trial.state != ModelState::kReady) {
    refusal = trial.failure == LoadFailure::kWarmup ? "it " + trial.reason
                                                    : "the artifact does not load: " + trial.reason;
  } else if (!allow_signature_change) {
    if (auto current = manager_->Find(name)) {
      if (const VersionEntry* serving = current->Default();
          serving != nullptr && serving->model != nullptr) {
        const std::string difference =
            SignatureDifference(serving->model->signature, trial.model->signature);
        if (!difference.empty()) {
          refusal = "its signature differs from version " + std::to_string(serving->version) +
                    "'s: " + difference + " (push with allow_signature_change to accept it)";
        }
      }
    }
  }
  if (trial.model != nullptr) pushed.format = FormatOf(*trial.model);
  trial = VersionEntry();
  if (!refusal.empty()) {
    fs::remove_all(staging, ec);
    return Status::InvalidArgument("version " + std::to_string(version) + " of model '" + name +
                                   "' was not stored: " + refusal);
  }
  if (store_->HoldsArtifacts()) {
    // Push() gave a store that holds artifacts the bytes in memory.
    StatusOr<int64_t> registered = RegisterPushed(pushed, dir, staging, artifact.bytes);
    if (!registered.ok()) {
      fs::remove_all(staging, ec);
      return registered.status();
    }
    version = *registered;
  }
  fs::rename(staging, dir / std::to_string(version), ec);
  if (ec) {
    fs::remove_all(staging, ec);
    return Status::Internal("cannot publish the pushed version: " + ec.message());
  }
  RETURN_IF_ERROR(SyncDirectory(dir));
  LOG_INFO("version pushed", {{"model", name},
                              {"version", std::to_string(version)},
                              {"digest", digest.digest},
                              {"actor", actor}});
  return version;
}

StatusOr<int64_t> ModelRepository::RegisterPushed(VersionRecord record, const fs::path& dir,
                                                  const fs::path& staging,
                                                  std::string_view artifact) {
  const std::optional<StoredConfig> config = ReadConfigFile(dir);
  VersionFiles files;
  // A version that is a directory: the model file is one of its files,
  // read back from the staging directory with the others.
  std::vector<std::string> contents;
  if (!record.files.empty()) {
    ASSIGN_OR_RETURN(contents, ReadVersionFiles(staging, record.files));
    for (size_t i = 0; i < contents.size(); ++i) files.contents[record.files[i].name] = contents[i];
  }
  files.artifact = record.files.empty() ? artifact : std::string_view();
  files.new_number = true;
  if (config) {
    files.config_name = config->name;
    files.config = config->bytes;
  }
  for (int attempt = 1;; ++attempt) {
    Status s = store_->RegisterVersionWithFiles(record, record.created_by, files);
    if (s.ok()) return record.version;
    if (s.code() != Status::Code::kAlreadyExists || attempt == 5) return s;
    ASSIGN_OR_RETURN(std::vector<VersionRecord> known, store_->Versions(record.model));
    const int64_t taken = record.version;
    for (const VersionRecord& r : known) record.version = std::max(record.version, r.version + 1);
    LOG_INFO("version number taken by another replica meanwhile; pushing as the next",
             {{"model", record.model},
              {"taken", std::to_string(taken)},
              {"version", std::to_string(record.version)}});
  }
}

}  // namespace berth
