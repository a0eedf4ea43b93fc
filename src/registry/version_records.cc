// ModelRepository's version records (registry/model_repository.h): what the
// store learns of a version the repository loaded (its digest, a directory
// version's metadata.json, a pushed one's berth-version.json, its
// signature); the rest of the class is in model_repository.cc.
#include "registry/model_repository.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/logging.h"
#include "core/json_document.h"
#include "core/model_name.h"
#include "registry/config_parser.h"
#include "registry/artifact_digest.h"
#include "registry/repository_files.h"
#include "registry/version_files.h"
#include "registry/version_metadata.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

// A directory version's own metadata.json (as a team or `berth-py import
// --repository` writes it), checked like a push's; one that fails the check
// is left out, with a warning naming the field.
void ReadMetadataFile(const fs::path& path, VersionRecord* record) {
  StatusOr<std::string> bytes = ReadFileBytes(path);
  if (!bytes.ok()) return;  // none: the version has no metadata
  StatusOr<std::string> metadata = CheckVersionMetadata(*bytes);
  if (!metadata.ok()) {
    LOG_WARN("ignoring a version's metadata.json", {{"model", record->model},
                                                     {"version", std::to_string(record->version)},
                                                     {"error", metadata.status().message()}});
    return;
  }
  record->metadata_json = std::move(metadata).value();
}

// A pushed version's berth-version.json: its source, creator and metadata.
// Absent or unreadable, the directory's defaults stand.
void ReadVersionRecord(const fs::path& path, VersionRecord* record) {
  std::ifstream in(path);
  if (!in) {
    ReadMetadataFile(path.parent_path() / kMetadataFile, record);
    return;
  }
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  // Full precision: the metadata is written back as it was read, and a
  // number off by one ulp moves a drift baseline's bin edge.
  const std::string json = text.str();
  if (ParseExactNumbers<0>(json, &doc).IsError() || !doc.IsObject()) {
    return;
  }
  for (auto [key, field] : {std::pair{"source", &record->source},
                            std::pair{"created_by", &record->created_by},
                            std::pair{"reason", &record->reason}}) {
    auto m = doc.FindMember(key);
    if (m != doc.MemberEnd() && m->value.IsString()) field->assign(m->value.GetString());
  }
  auto metadata = doc.FindMember("metadata");
  if (metadata != doc.MemberEnd() && metadata->value.IsObject()) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    metadata->value.Accept(w);
    record->metadata_json.assign(buf.GetString(), buf.GetSize());
  }
}

}  // namespace

void ModelRepository::RegisterReadyVersions(const ModelEntry& entry) {
  auto known = store_->Versions(entry.name);
  if (!known.ok()) {
    LOG_WARN("cannot read the registry store", {{"error", known.status().message()}});
    return;
  }
  for (const VersionEntry& v : entry.versions) {
    if (v.state != ModelState::kReady) continue;
    const auto record_it = std::find_if(known->begin(), known->end(),
                                        [&](const VersionRecord& r) { return r.version == v.version; });
    if (record_it != known->end()) {
      if (record_it->signature_json.empty()) RecordSignature(entry.name, v);
      continue;
    }
    // The artifact is the file the version's backend loads (model.onnx, or
    // the python backend's python.model_file).
    const ModelConfig& config = v.model->config;
    const auto factory = factories_.find(config.backend);
    const std::string artifact =
        factory != factories_.end() ? factory->second->ModelFileFor(config) : "model.onnx";
    const fs::path file = root_ / entry.name / std::to_string(v.version) / artifact;
    // A store that holds artifacts gets the bytes with the record (replicas
    // share no disk): read once, hashed in memory.
    std::string bytes;
    StatusOr<ArtifactDigest> digest = ArtifactDigest{};
    if (store_->HoldsArtifacts()) {
      StatusOr<std::string> read = ReadFileBytes(file);
      digest = read.ok() ? StatusOr<ArtifactDigest>(Sha256Bytes(*read)) : read.status();
      if (read.ok()) bytes = std::move(read).value();
    } else {
      digest = Sha256File(file);
    }
    if (!digest.ok()) {
      LOG_WARN("cannot register version", {{"model", entry.name},
                                            {"version", std::to_string(v.version)},
                                            {"error", Scrub(digest.status().message())}});
      continue;
    }
    VersionRecord record;
    record.model = entry.name;
    record.version = v.version;
    record.digest = digest->digest;
    record.size = digest->size;
    record.format = FormatOf(*v.model);
    record.source = "directory";
    record.created_by = "repository";
    ReadVersionRecord(file.parent_path() / kVersionRecordFile, &record);
    std::vector<std::string> contents;
    if (config.backend == "python") {
      // A version that is a directory is recorded file by file (and a store
      // that holds artifacts gets every file).
      StatusOr<std::vector<VersionFile>> listed = ListVersionFiles(file.parent_path());
      StatusOr<std::vector<std::string>> read =
          listed.ok() && store_->HoldsArtifacts() ? ReadVersionFiles(file.parent_path(), *listed)
                                                  : StatusOr<std::vector<std::string>>(contents);
      if (!listed.ok() || !read.ok()) {
        LOG_WARN("cannot register version",
                 {{"model", entry.name},
                  {"version", std::to_string(v.version)},
                  {"error", Scrub((listed.ok() ? read.status() : listed.status()).message())}});
        continue;
      }
      record.files = std::move(listed).value();
      contents = std::move(read).value();
    }
    Status s;
    if (store_->HoldsArtifacts()) {
      const std::optional<StoredConfig> config = ReadConfigFile(root_ / entry.name);
      VersionFiles files;
      files.artifact = record.files.empty() ? std::string_view(bytes) : std::string_view();
      for (size_t i = 0; i < contents.size(); ++i) files.contents[record.files[i].name] = contents[i];
      if (config) {
        files.config_name = config->name;
        files.config = config->bytes;
      }
      s = store_->RegisterVersionWithFiles(record, record.created_by, files);
    } else {
      s = store_->RegisterVersion(record, record.created_by);
    }
    if (!s.ok()) {
      LOG_WARN("cannot register version", {{"model", entry.name},
                                            {"version", std::to_string(v.version)},
                                            {"error", s.message()}});
      continue;
    }
    RecordSignature(entry.name, v);
  }
}

void ModelRepository::RecordSignature(const std::string& name, const VersionEntry& v) {
  Status s = store_->RecordSignature(name, v.version, SignatureJson(v.model->signature));
  if (!s.ok()) {
    LOG_WARN("cannot record a version's signature", {{"model", name},
                                                     {"version", std::to_string(v.version)},
                                                     {"error", s.message()}});
  }
}

StatusOr<VersionRecord> ModelRepository::RecordFromFiles(const std::string& name, int64_t version,
                                                        const BackendFactory& factory,
                                                        const ModelConfig& config) const {
  const fs::path file = root_ / name / std::to_string(version) / factory.ModelFileFor(config);
  auto digest = Sha256File(file);
  if (!digest.ok()) return Status(digest.status().code(), Scrub(digest.status().message()));
  VersionRecord record;
  record.model = name;
  record.version = version;
  record.digest = digest->digest;
  record.size = digest->size;
  const std::string platform(factory.platform());
  record.format = platform == "onnxruntime_onnx" ? "onnx" : platform;
  record.source = "directory";
  record.created_by = "repository";
  ReadVersionRecord(file.parent_path() / kVersionRecordFile, &record);
  if (config.backend == "python") {
    ASSIGN_OR_RETURN(record.files, ListVersionFiles(file.parent_path()));
  }
  return record;
}

StatusOr<std::string> ModelRepository::ReadArtifact(const std::string& name,
                                                    int64_t version) const {
  RETURN_IF_ERROR(ValidateModelName(name));
  if (store_ == nullptr) return Status::Unavailable(kNoRegistryStore);
  ASSIGN_OR_RETURN(std::vector<VersionRecord> records, store_->Versions(name));
  const auto record = std::find_if(records.begin(), records.end(),
                                   [&](const VersionRecord& r) { return r.version == version; });
  if (record == records.end() || record->status == VersionStatus::kDeleted) {
    return UnregisteredVersion(name, version);
  }
  if (store_->HoldsArtifacts()) return store_->FetchArtifact(record->digest);
  ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(root_ / name));
  ASSIGN_OR_RETURN(BackendFactory* factory, FactoryFor(factories_, config, name));
  StatusOr<std::string> bytes =
      ReadFileBytes(root_ / name / std::to_string(version) / factory->ModelFileFor(config));
  if (!bytes.ok()) return Status(bytes.status().code(), Scrub(bytes.status().message()));
  if (Sha256Bytes(*bytes).digest != record->digest) {
    return Status::Internal("version " + std::to_string(version) + " of model '" + name +
                            "' changed on disk since it was registered (" + record->digest + ")");
  }
  return bytes;
}

}  // namespace berth
