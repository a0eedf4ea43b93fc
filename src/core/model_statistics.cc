#include "core/model_statistics.h"

#include <optional>

#include "core/model_name.h"

namespace berth {
namespace {

void AddReadyVersions(const ModelEntry& entry, const StatisticsSource& source,
                      std::vector<ModelStatistics>* out) {
  for (const VersionEntry& v : entry.versions) {
    if (v.state == ModelState::kReady) {
      out->push_back(source.Statistics(entry.name, std::to_string(v.version)));
    }
  }
}

}  // namespace

StatusOr<std::vector<ModelStatistics>> GetModelStatistics(const ModelManager& models,
                                                          const StatisticsSource& source,
                                                          std::string_view name,
                                                          std::string_view selector) {
  std::vector<ModelStatistics> out;
  // As in Triton, a version without a model name is ignored.
  if (name.empty()) {
    for (const ModelEntry& entry : models.List()) AddReadyVersions(entry, source, &out);
    return out;
  }
  RETURN_IF_ERROR(ValidateModelName(name));
  const std::optional<ModelEntry> entry = models.Find(name);
  // Triton's words, then Berth's detail in parentheses, as ModelManager's
  // UnknownModel() says them.
  const std::string model = "requested model '" + std::string(name) +
                            "' is not available (model '" + std::string(name) + "' ";
  if (!entry) return Status::NotFound(model + "is not in the repository)");
  if (entry->LatestReady() == nullptr) {
    return Status::NotFound(model + "has no ready version" +
                            (entry->reason.empty() ? "" : ": " + entry->reason) + ")");
  }
  if (selector.empty()) {
    AddReadyVersions(*entry, source, &out);
    return out;
  }
  const std::string version =
      "requested model version is not available for model '" + entry->name + "' (";
  // What Resolve takes: a selector starting with a letter is an alias.
  int64_t number = 0;
  if (selector[0] >= 'a' && selector[0] <= 'z') {
    auto alias = entry->aliases.find(selector);
    if (alias == entry->aliases.end()) {
      return Status::NotFound(version + "model '" + entry->name + "' has no version or alias '" +
                              PrintableExcerpt(selector) + "')");
    }
    number = alias->second;
  } else {
    ASSIGN_OR_RETURN(number, ParseVersionNumber(selector));
  }
  const VersionEntry* v = entry->FindVersion(number);
  if (v == nullptr) {
    return Status::NotFound(version + "model '" + entry->name + "' has no version '" +
                            std::to_string(number) + "')");
  }
  if (v->state != ModelState::kReady) {
    return Status::NotFound(version + "version " + std::to_string(number) + " of model '" +
                            entry->name + "' is " + ModelStateName(v->state) +
                            (v->reason.empty() ? "" : ": " + v->reason) + ")");
  }
  out.push_back(source.Statistics(entry->name, std::to_string(number)));
  return out;
}

}  // namespace berth
