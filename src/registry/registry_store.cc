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

StatusOr<std::string> SplitAuditReason(const std::vector<WeightedVersion>& split,
                                       std::string_view sticky_key, std::string_view reason) {
  std::string out;
  for (const WeightedVersion& w : split) {
    if (w.weight <= 0) return Status::InvalidArgument("split weights must be positive");
    out += (out.empty() ? "" : " ") + std::to_string(w.version) + "=" + std::to_string(w.weight);
  }
  if (!sticky_key.empty()) {
    ASSIGN_OR_RETURN(std::string normalized, ValidateStickyKey(sticky_key));
    if (normalized != sticky_key) {
      return Status::InvalidArgument("a split's sticky key is stored lower-case");
    }
    out += " sticky-key=" + normalized;
  }
  if (!reason.empty()) out += ": " + std::string(reason);
  return out;
}

namespace {

// SplitAuditReason's split back, or nullopt if `reason` is not one. Its
// tokens hold no space, so the first ": " ends them.
std::optional<AliasState> ParseSplitReason(std::string_view reason) {
  const size_t colon = reason.find(": ");
  std::string_view shares = reason.substr(0, colon);
  AliasState state;
  while (!shares.empty()) {
    size_t space = shares.find(' ');
    const std::string_view token = shares.substr(0, space);
    shares = space == std::string_view::npos ? std::string_view() : shares.substr(space + 1);
    if (token.starts_with("sticky-key=") && state.sticky_key.empty() && shares.empty()) {
      state.sticky_key = std::string(token.substr(11));
      continue;
    }
    const size_t eq = token.find('=');
    int64_t version = 0;
    int64_t weight = 0;
    const auto number = [](std::string_view text, int64_t* out) {
      if (text.empty() || text.size() > 18) return false;
      *out = 0;
      for (char c : text) {
        if (c < '0' || c > '9') return false;
        *out = *out * 10 + (c - '0');
      }
      return true;
    };
    if (eq == std::string_view::npos || !number(token.substr(0, eq), &version) ||
        !number(token.substr(eq + 1), &weight) || weight <= 0 || weight > 1000000) {
      return std::nullopt;
    }
    state.split.push_back({version, static_cast<int>(weight)});
  }
  if (state.split.size() < 2) return std::nullopt;
  state.version = HeaviestVersion(state.split);
  return state;
}

}  // namespace

std::optional<AliasState> RollbackState(const std::vector<AuditRecord>& history,
                                        std::string_view alias) {
  std::vector<AliasState> stack;
  for (const AuditRecord& r : history) {
    if (r.alias != alias || !r.to_version) continue;
    std::optional<AliasState> state;
    if (r.action == "split" || r.action == "rollback") state = ParseSplitReason(r.reason);
    if (!state || state->version != *r.to_version) state = AliasState{*r.to_version, {}, {}};
    if (r.action == "rollback") {
      if (!stack.empty()) stack.pop_back();
      // A history that does not lead here (cut short, or written before
      // splits were recorded whole): the rollback's own target is the truth.
      if (stack.empty() || stack.back().version != state->version) stack.push_back(*state);
    } else if (stack.empty() || stack.back() != *state) {
      stack.push_back(*state);
    }
  }
  if (stack.size() < 2) return std::nullopt;
  return stack[stack.size() - 2];
}

std::optional<int64_t> RollbackTarget(const std::vector<AuditRecord>& history,
                                      std::string_view alias) {
  const std::optional<AliasState> state = RollbackState(history, alias);
  if (!state) return std::nullopt;
  return state->version;
}

Status CheckRollback(const std::vector<AuditRecord>& history, std::string_view model,
                     std::string_view alias, const AliasState& to) {
  if (RollbackState(history, alias) == to) return Status::Ok();
  return Status::FailedPrecondition(RollbackRaceMessage(model, alias));
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
