#include "server/auth/scope.h"

#include "core/model_name.h"

namespace berth::auth {

std::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kNone: return "none";
    case Scope::kRead: return "read";
    case Scope::kInfer: return "infer";
    case Scope::kAdmin: return "admin";
  }
  return "none";
}

StatusOr<Grant> ParseGrant(std::string_view text) {
  if (text == "read") return Grant{Scope::kRead, ""};
  if (text == "admin") return Grant{Scope::kAdmin, ""};
  if (text == "infer") return Grant{Scope::kInfer, ""};
  if (text.starts_with("infer:")) {
    const std::string_view model = text.substr(6);
    if (Status s = ValidateModelName(model); !s.ok()) {
      return Status::InvalidArgument("invalid scope '" + PrintableExcerpt(text) +
                                     "': " + s.message());
    }
    return Grant{Scope::kInfer, std::string(model)};
  }
  return Status::InvalidArgument("invalid scope '" + PrintableExcerpt(text) +
                                 "': expected infer, infer:MODEL, read or admin");
}

std::string GrantText(const Grant& grant) {
  std::string text(ScopeName(grant.scope));
  if (!grant.model.empty()) text += ":" + grant.model;
  return text;
}

bool Allows(const std::vector<Grant>& grants, Scope needed, std::string_view model) {
  if (needed == Scope::kNone) return true;
  for (const Grant& g : grants) {
    if (g.scope == Scope::kAdmin) return true;
    if (g.scope != needed) continue;
    if (needed != Scope::kInfer || g.model.empty()) return true;
    if (!model.empty() && g.model == model) return true;
  }
  return false;
}

}  // namespace berth::auth
