// ModelRepository's load with Triton's parameters (registry/model_repository.h,
// LoadModel(name, override)): a configuration override and the files of
// whole version directories, written through staging directories and
// renamed into place, taken back if the model does not load with them.
#include <algorithm>
#include <system_error>

#include "core/logging.h"
#include "core/model_name.h"
#include "registry/artifact_digest.h"
#include "registry/model_repository.h"
#include "registry/repository_files.h"
#include "registry/triton_config.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

using FilesByVersion =
    std::map<int64_t, std::vector<std::pair<fs::path, const std::string*>>>;

// Writes one version's files under `staging` (created afresh: whatever was
// there, a link included, is removed, never followed) and syncs them.
Status WriteVersion(const fs::path& staging,
                    const std::vector<std::pair<fs::path, const std::string*>>& files) {
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging, ec);
  if (ec) return Status::Internal("cannot create a staging directory: " + ec.message());
  for (const auto& [relative, bytes] : files) {
    const fs::path path = staging / relative;
    fs::create_directories(path.parent_path(), ec);
    if (ec) return Status::Internal("cannot create a directory for a file: " + ec.message());
    RETURN_IF_ERROR(WriteFileDurably(path, *bytes));
    if (path.parent_path() != staging) RETURN_IF_ERROR(SyncDirectory(path.parent_path()));
  }
  return SyncDirectory(staging);
}

// Whether `dir` lies inside `root` once links are resolved: a model directory
// that is a link out of the repository is not written through.
bool Inside(const fs::path& root, const fs::path& dir) {
  std::error_code ec;
  const fs::path r = fs::weakly_canonical(root, ec);
  if (ec) return false;
  const fs::path d = fs::weakly_canonical(dir, ec);
  if (ec) return false;
  auto [end, ignored] = std::mismatch(r.begin(), r.end(), d.begin(), d.end());
  return end == r.end();
}

}  // namespace

Status ModelRepository::LoadModel(const std::string& name, const LoadOverride& override) {
  if (!override.config_json && override.files.empty()) return LoadModel(name);
  RETURN_IF_ERROR(ValidateModelName(name));
  std::optional<ConfigOverride> config;
  std::string config_text;
  if (override.config_json) {
    auto parsed = ParseTritonConfigJson(*override.config_json, &config_text);
    if (!parsed.ok()) return parsed.status().WithContext("the 'config' parameter");
    for (const std::string& warning : parsed->warnings) {
      LOG_WARN("model config field not honoured", {{"model", name}, {"warning", warning}});
    }
    if (!parsed->config.name.empty() && parsed->config.name != name) {
      return Status::InvalidArgument("the 'config' parameter names model '" +
                                     PrintableExcerpt(parsed->config.name) + "', not '" + name +
                                     "'");
    }
    parsed->config.name = name;
    config = ConfigOverride{std::move(parsed->config), *override.config_json};
  }
  if (!override.files.empty() && !config) {
    return Status::InvalidArgument(
        "'file:' parameters need the 'config' parameter too, as in Triton");
  }
  FilesByVersion files;
  for (const auto& [file, bytes] : override.files) {
    ASSIGN_OR_RETURN(LoadFile parsed, ParseLoadFileName(file));
    files[parsed.version].emplace_back(std::move(parsed.relative), &bytes);
  }
  // One version per load: a version that loads is recorded in the store at
  // once, so a load taken back must not have loaded any version it sent.
  if (files.size() > 1) {
    return Status::InvalidArgument("'file:' parameters carry " + std::to_string(files.size()) +
                                   " versions; send one version per load");
  }
  std::lock_guard lock(mu_);
  try {
    return LoadOverrideLocked(name, config, config_text, files);
  } catch (const std::exception& e) {
    return Status::Internal(Scrub("failed to load '" + name + "': " + e.what()));
  }
}

Status ModelRepository::LoadOverrideLocked(const std::string& name,
                                           const std::optional<ConfigOverride>& config,
                                           const std::string& config_text,
                                           const FilesByVersion& files) {
  const fs::path dir = root_ / name;
  std::error_code ec;
  const bool existed = fs::is_directory(dir, ec);
  if (!existed && files.empty()) return UnknownModel(name);
  if (existed && !files.empty() && !Inside(root_, dir)) {
    return Status::InvalidArgument("model '" + name +
                                   "' is a link out of the repository; its files are not "
                                   "written through it");
  }
  // A version the registry has recorded is immutable (its digest is
  // recorded): its files are not replaced.
  if (store_ != nullptr && !files.empty()) {
    ASSIGN_OR_RETURN(std::vector<VersionRecord> records, store_->Versions(name));
    for (const VersionRecord& r : records) {
      if (files.count(r.version)) {
        return Status::InvalidArgument(
            "version " + std::to_string(r.version) + " of model '" + name +
            "' is recorded in the registry and is not replaced; send a new version number");
      }
    }
  }
  // The versions sent as files: each staged, then renamed into place with
  // what it replaces kept aside until the load has succeeded.
  std::vector<int64_t> replaced;
  auto restore_files = [&] {
    std::error_code e;
    if (!existed) {
      fs::remove_all(dir, e);
      return;
    }
    for (const auto& [version, unused] : files) {
      const fs::path target = dir / std::to_string(version);
      fs::remove_all(target, e);
      if (std::find(replaced.begin(), replaced.end(), version) != replaced.end()) {
        fs::rename(dir / (".replaced-" + std::to_string(version)), target, e);
      }
    }
    (void)SyncDirectory(dir);
  };
  if (!files.empty()) {
    // A new model is staged whole, its configuration written as its
    // config.pbtxt, and published by one rename.
    const fs::path base = existed ? dir : root_ / (".load-model-" + name);
    if (!existed) {
      fs::remove_all(base, ec);
      fs::create_directories(base, ec);
      if (ec) return Status::Internal("cannot create the model's directory: " + ec.message());
      RETURN_IF_ERROR(WriteFileDurably(base / "config.pbtxt", config_text));
    }
    Status written = Status::Ok();
    for (const auto& [version, list] : files) {
      written = WriteVersion(base / (".load-" + std::to_string(version)), list);
      if (!written.ok()) break;
    }
    if (written.ok()) {
      for (const auto& [version, unused] : files) {
        const fs::path staged = base / (".load-" + std::to_string(version));
        const fs::path target = base / std::to_string(version);
        if (existed && fs::exists(fs::symlink_status(target, ec))) {
          const fs::path aside = base / (".replaced-" + std::to_string(version));
          fs::remove_all(aside, ec);
          fs::rename(target, aside, ec);
          if (ec) {
            written = Status::Internal("cannot move version " + std::to_string(version) +
                                       " aside: " + ec.message());
            break;
          }
          replaced.push_back(version);
        }
        fs::rename(staged, target, ec);
        if (ec) {
          written = Status::Internal("cannot publish version " + std::to_string(version) + ": " +
                                     ec.message());
          break;
        }
      }
    }
    if (written.ok()) written = SyncDirectory(base);
    if (written.ok() && !existed) {
      fs::rename(base, dir, ec);
      if (ec) written = Status::Internal("cannot publish the new model: " + ec.message());
      if (written.ok()) written = SyncDirectory(root_);
    }
    if (!written.ok()) {
      for (const auto& [version, unused] : files) {
        fs::remove_all(base / (".load-" + std::to_string(version)), ec);
      }
      if (!existed) fs::remove_all(base, ec);
      restore_files();
      return written;
    }
  }

  std::optional<ConfigOverride> previous;
  if (auto it = config_overrides_.find(name); it != config_overrides_.end()) {
    previous = it->second;
  }
  if (config) config_overrides_[name] = *config;
  Status loaded = LoadModelLocked(name, nullptr, nullptr);
  if (loaded.ok()) {
    auto entry = manager_->Find(name);
    if (!entry || entry->LatestReady() == nullptr) {
      std::string why = entry ? entry->reason : std::string();
      if (entry && why.empty() && !entry->versions.empty()) why = entry->versions.back().reason;
      loaded = Status::FailedPrecondition("model '" + name + "' has no version that loads" +
                                          (why.empty() ? "" : ": " + why));
    }
    for (const auto& [version, unused] : files) {
      if (!loaded.ok()) break;
      const VersionEntry* v = entry->FindVersion(version);
      if (v == nullptr || v->state != ModelState::kReady) {
        loaded = Status::FailedPrecondition(
            "version " + std::to_string(version) + " sent with the request did not load" +
            (v == nullptr ? std::string(": the version policy does not load it")
                          : ": " + v->reason));
      }
    }
  }
  if (loaded.ok()) {
    for (int64_t version : replaced) fs::remove_all(dir / (".replaced-" + std::to_string(version)), ec);
    LOG_INFO("model loaded with the request's parameters",
             {{"model", name},
              {"config", config ? "override" : "file"},
              {"versions_sent", std::to_string(files.size())}});
    return Status::Ok();
  }
  // Everything as it was: the files, the configuration, and the table.
  if (previous) {
    config_overrides_[name] = std::move(*previous);
  } else {
    config_overrides_.erase(name);
  }
  restore_files();
  if (existed) {
    if (Status again = LoadModelLocked(name, nullptr, nullptr); !again.ok()) {
      LOG_WARN("reload after a refused load with parameters failed",
               {{"model", name}, {"error", again.message()}});
    }
  } else {
    manager_->Remove(name);
    fingerprints_.erase(name);
  }
  return loaded;
}

}  // namespace berth
