// The store-independent parts of registry/registry_store.h: the time and
// scope formats, the rollback target, and the checks of alias and sticky key
// names that every store and the routes share.
#include "registry/registry_store.h"

#include <algorithm>
#include <chrono>
#include <ctime>

namespace berth {

std::string NowRfc3339() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string JoinScopes(const std::vector<std::string>& scopes) {
  std::string out;
  for (const std::string& s : scopes) out += (out.empty() ? "" : " ") + s;
  return out;
}

std::vector<std::string> SplitScopes(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::optional<int64_t> RollbackTarget(const std::vector<AuditRecord>& history,
                                      std::string_view alias) {
  std::vector<int64_t> stack;
  for (const AuditRecord& r : history) {
    if (r.alias != alias || !r.to_version) continue;
    if (r.action == "rollback") {
      if (!stack.empty()) stack.pop_back();
      if (stack.empty() || stack.back() != *r.to_version) stack.push_back(*r.to_version);
    } else if (stack.empty() || stack.back() != *r.to_version) {
      stack.push_back(*r.to_version);
    }
  }
  if (stack.size() < 2) return std::nullopt;
  return stack[stack.size() - 2];
}

Status UnregisteredVersion(std::string_view model, int64_t version) {
  return Status::NotFound("version " + std::to_string(version) + " of model '" +
                          std::string(model) + "' is not registered (or was deleted)");
}

std::string RollbackRaceMessage(std::string_view model, std::string_view alias) {
  return "alias '" + std::string(alias) + "' of model '" + std::string(model) +
         "' was moved by another writer meanwhile; nothing was rolled back "
         "(roll back again to "
         "undo its latest move)";
}

std::string_view VersionStatusName(VersionStatus status) {
  switch (status) {
    case VersionStatus::kActive: return "active";
    case VersionStatus::kArchived: return "archived";
    case VersionStatus::kDeleted: return "deleted";
  }
  return "active";
}

StatusOr<std::string> ValidateStickyKey(std::string_view header) {
  // "input:NAME" (the prefix in any case): an input's name, kept as spelled.
  if (header.size() >= kInputKeyPrefix.size() &&
      std::equal(kInputKeyPrefix.begin(), kInputKeyPrefix.end(), header.begin(),
                 [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b); })) {
    const std::string_view input = header.substr(kInputKeyPrefix.size());
    bool ok = !input.empty() && input.size() <= 128;
    for (char c : input) ok = ok && c > ' ' && c < 0x7f;
    if (!ok) {
      return Status::InvalidArgument(
          "invalid sticky key: 'input:' must be followed by an input's name (1 "
          "to 128 printable "
          "ASCII characters, no spaces)");
    }
    return std::string(kInputKeyPrefix) + std::string(input);
  }
  std::string out(header);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  bool ok = !out.empty() && out.size() <= 64 && !out.starts_with("grpc-") && !out.ends_with("-bin");
  for (char c : out) {
    ok = ok &&
         ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.');
  }
  if (!ok) {
    return Status::InvalidArgument(
        "invalid sticky key: a header name of 1 to 64 characters of A-Z, a-z, "
        "0-9, '_', '-' and "
        "'.', not starting with 'grpc-' or ending with '-bin'; or input:NAME "
        "for an input's "
        "value");
  }
  return out;
}

Status ValidateAliasName(std::string_view alias) {
  const auto bad = [&] {
    return Status::InvalidArgument(
        "invalid alias name: aliases are 1 to 64 characters of a-z, 0-9, '_' "
        "and '-', starting "
        "with a letter");
  };
  if (alias.empty() || alias.size() > 64 || alias[0] < 'a' || alias[0] > 'z') return bad();
  for (char c : alias) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return bad();
  }
  return Status::Ok();
}

}  // namespace berth
