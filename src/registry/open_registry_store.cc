#include <filesystem>

#include "core/model_name.h"
#include "registry/registry_store.h"

namespace berth {

StatusOr<std::unique_ptr<RegistryStore>> OpenRegistryStore(const std::string& registry,
                                                           const std::string& model_repository) {
  if (registry == "none") return std::unique_ptr<RegistryStore>();
  std::string path;
  if (registry.empty()) {
    const std::filesystem::path dir = std::filesystem::path(model_repository) / ".berth";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::Unavailable("cannot create " + dir.string() + ": " + ec.message());
    path = (dir / "registry.db").string();
  } else if (registry.starts_with("sqlite:")) {
    path = registry.substr(7);
  } else if (registry.starts_with("postgresql://") || registry.starts_with("postgres://")) {
    // Not echoed: the URL may carry a password; the store's messages name
    // the server without it.
    return OpenPostgresRegistryStore(registry);
  } else {
    // Only the scheme is echoed: what follows may hold a password.
    return Status::InvalidArgument(
        "--registry: expected sqlite:PATH, postgresql://USER@HOST:PORT/DB or none, not '" +
        PrintableExcerpt(registry.substr(0, registry.find_first_of(":/@")), 32) + "...'");
  }
  return OpenSqliteRegistryStore(path);
}

}  // namespace berth
