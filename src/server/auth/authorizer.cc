#include "server/auth/authorizer.h"

#include <boost/asio/ip/address.hpp>

#include <charconv>
#include <cmath>
#include <ctime>

#include "core/logging.h"
#include "core/model_name.h"
#include "server/auth/api_key.h"

namespace berth::auth {
namespace {

constexpr int64_t kMaxExpiresDays = 36500;
constexpr double kMaxRate = 1e6;

// What an unknown key's request is checked against, so that an unknown id
// costs the same hash and comparison as a known one with a wrong secret.
constexpr std::string_view kDummySalt = "00000000000000000000000000000000";
constexpr std::string_view kDummyHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Seconds since the Unix epoch of "YYYY-MM-DDTHH:MM:SSZ"; nullopt otherwise.
std::optional<int64_t> ParseRfc3339(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

std::string Rfc3339(int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status ValidateKeyName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-' || c == '.');
  }
  if (ok) return Status::Ok();
  return Status::InvalidArgument("invalid API key name '" + PrintableExcerpt(name) +
                                 "': 1 to 64 characters of A-Z, a-z, 0-9, '_', '-' and '.'");
}

Decision Refuse(Status status, std::string_view actor) {
  return Decision{std::move(status), std::string(actor), 0};
}

}  // namespace

bool IsLoopback(std::string_view peer) {
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(std::string(peer), ec);
  if (ec) return false;
  if (address.is_loopback()) return true;
  return address.is_v6() && address.to_v6().is_v4_mapped() &&
         boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6())
             .is_loopback();
}

StatusOr<double> ParseRate(std::string_view text) {
  std::string_view number = text;
  if (number.ends_with("/s")) number.remove_suffix(2);
  double rate = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), rate);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() ||
      !std::isfinite(rate) || rate <= 0 || rate > kMaxRate) {
    return Status::InvalidArgument("invalid rate '" + PrintableExcerpt(text) +
                                   "': expected N/s, N a number above 0, at most 1000000");
  }
  return rate;
}

StatusOr<std::string> CreateKey(RegistryStore* store, const KeySpec& spec) {
  RETURN_IF_ERROR(ValidateKeyName(spec.name));
  if (spec.scopes.empty()) {
    return Status::InvalidArgument(
        "an API key needs at least one scope (infer, infer:MODEL, "
        "read or admin)");
  }
  for (const std::string& s : spec.scopes) RETURN_IF_ERROR(ParseGrant(s).status());
  if (!std::isfinite(spec.rate) || spec.rate < 0 || spec.rate > kMaxRate) {
    return Status::InvalidArgument("the rate must be between 0 (no limit) and 1000000 per second");
  }
  if (spec.expires_days < 0 || spec.expires_days > kMaxExpiresDays) {
    return Status::InvalidArgument("expires must be between 1 and 36500 days");
  }
  if (store == nullptr) {
    return Status::FailedPrecondition("API keys need a registry store, and this server has none");
  }
  ASSIGN_OR_RETURN(NewKey key, GenerateApiKey());
  ApiKeyRecord record;
  record.id = key.id;
  record.name = spec.name;
  record.salt = key.salt;
  record.hash = key.hash;
  record.scopes = spec.scopes;
  record.rate = spec.rate;
  const int64_t now = NowSeconds();
  record.created_at = Rfc3339(now);
  if (spec.expires_days > 0) record.expires_at = Rfc3339(now + spec.expires_days * 86400);
  RETURN_IF_ERROR(store->CreateApiKey(record));
  return std::move(key.key);
}

Status RevokeKey(RegistryStore* store, std::string_view name) {
  RETURN_IF_ERROR(ValidateKeyName(name));
  if (store == nullptr) {
    return Status::FailedPrecondition("API keys need a registry store, and this server has none");
  }
  return store->RevokeApiKey(name, Rfc3339(NowSeconds()));
}

Authorizer::Authorizer(AuthOptions options, RegistryStore* store)
    : options_(options), store_(store), keys_(std::make_shared<const KeyTable>()) {
  dummy_key_.salt = kDummySalt;
  dummy_key_.hash = kDummyHash;
  dummy_key_.verified = std::make_shared<VerifiedSecret>();
  dummy_key_.verified->Remember(std::string(kKeySecretDigits, 'x'));
}

std::shared_ptr<const Authorizer::KeyTable> Authorizer::keys() const {
  std::lock_guard lock(mu_);
  return keys_;
}

Status Authorizer::Reload() {
  if (store_ == nullptr) return Status::Ok();
  std::lock_guard reload(reload_mu_);
  ASSIGN_OR_RETURN(std::vector<ApiKeyRecord> records, store_->ApiKeys());
  const std::shared_ptr<const KeyTable> old = keys();
  auto table = std::make_shared<KeyTable>();
  for (ApiKeyRecord& r : records) {
    CachedKey key;
    key.name = std::move(r.name);
    key.salt = std::move(r.salt);
    key.hash = std::move(r.hash);
    key.revoked = !r.revoked_at.empty();
    bool valid = true;
    for (const std::string& s : r.scopes) {
      auto grant = ParseGrant(s);
      if (grant.ok()) {
        key.grants.push_back(std::move(grant).value());
      } else {
        valid = false;
      }
    }
    if (!r.expires_at.empty()) {
      key.expires = ParseRfc3339(r.expires_at);
      // An expiry that cannot be read: the key is treated as expired.
      if (!key.expires) key.expires = 0;
    }
    // Said once per key, not at every reload.
    if (!valid && !old->contains(r.id)) {
      LOG_WARN(
          "an API key in the registry store has a scope this berth does not know; the "
          "scope is ignored",
          {{"key", key.name}});
    }
    const auto previous = old->find(r.id);
    if (previous != old->end() && previous->second.salt == key.salt &&
        previous->second.hash == key.hash) {
      key.verified = previous->second.verified;
    } else {
      key.verified = std::make_shared<VerifiedSecret>();
    }
    if (r.rate > 0) {
      // The bucket survives a reload, so a reload does not refill it.
      auto it = old->find(r.id);
      if (it != old->end() && it->second.bucket != nullptr && it->second.bucket->rate() == r.rate) {
        key.bucket = it->second.bucket;
      } else {
        key.bucket = std::make_shared<TokenBucket>(r.rate);
      }
    }
    table->emplace(std::move(r.id), std::move(key));
  }
  std::lock_guard lock(mu_);
  keys_ = std::move(table);
  return Status::Ok();
}

Decision Authorizer::Authorize(const Credentials& credentials, Scope needed) const {
  if (needed == Scope::kNone) return Decision{Status::Ok(), std::string(credentials.peer), 0};
  if (options_.require_auth) return AuthorizeKey(credentials, needed);
  if (needed != Scope::kAdmin || options_.allow_remote_admin || IsLoopback(credentials.peer)) {
    return Decision{Status::Ok(), std::string(credentials.peer), 0};
  }
  return Refuse(Status::PermissionDenied(
                    "admin requests (changes to what is served, API keys) are accepted only from "
                    "this machine (loopback): start berth with --require-auth and send an admin "
                    "API key, or with --allow-remote-admin true, to accept them from " +
                    PrintableExcerpt(credentials.peer)),
                credentials.peer);
}

Decision Authorizer::AuthorizeKey(const Credentials& credentials, Scope needed) const {
  const std::string_view peer = credentials.peer;
  if (credentials.authorization.empty()) {
    return Refuse(Status::Unauthenticated("this server requires an API key: send "
                                          "'Authorization: Bearer <key>'"),
                  peer);
  }
  auto token = ParseBearer(credentials.authorization);
  if (!token.ok()) return Refuse(Status::Unauthenticated(token.status().message()), peer);
  const auto invalid = [] { return Status::Unauthenticated("invalid API key"); };
  auto parts = ParseApiKey(*token);
  if (!parts.ok()) return Refuse(invalid(), peer);
  const std::shared_ptr<const KeyTable> table = keys();
  const auto it = table->find(parts->id);
  const CachedKey* key = it == table->end() ? nullptr : &it->second;
  // A key's secret, once it matched the stored hash, is remembered; every
  // other secret (a wrong one, a first use) is hashed. An unknown id goes
  // through the same two steps against a dummy key, so all refusals of a
  // well-formed key cost the same (ConstantTimeTest measures it).
  const CachedKey& checked = key != nullptr ? *key : dummy_key_;
  bool matches = checked.verified->Matches(parts->secret);
  if (!matches) {
    matches = SecretMatches(checked.salt, checked.hash, parts->secret);
    if (matches && key != nullptr) key->verified->Remember(parts->secret);
  }
  matches = matches && key != nullptr;
  if (!matches) return Refuse(invalid(), peer);
  if (key->revoked) {
    return Refuse(Status::Unauthenticated("the API key '" + key->name + "' was revoked"), peer);
  }
  if (key->expires && *key->expires <= NowSeconds()) {
    return Refuse(Status::Unauthenticated("the API key '" + key->name + "' expired at " +
                                          Rfc3339(*key->expires)),
                  peer);
  }
  if (!Allows(key->grants, needed, credentials.model)) {
    std::string wanted(ScopeName(needed));
    if (needed == Scope::kInfer && !credentials.model.empty()) {
      wanted += ":" + PrintableExcerpt(credentials.model);
    }
    return Refuse(Status::PermissionDenied("the API key '" + key->name +
                                           "' does not grant the scope '" + wanted + "'"),
                  key->name);
  }
  if (key->bucket != nullptr) {
    const auto wait = key->bucket->TryTake(TokenBucket::Clock::now());
    if (wait > TokenBucket::Clock::duration::zero()) {
      const int64_t secs =
          std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(wait).count());
      char rate[32];
      std::snprintf(rate, sizeof(rate), "%g", key->bucket->rate());
      return Decision{Status::ResourceExhausted(
                          "the API key '" + key->name + "' is over its rate limit of " + rate +
                          " requests per second; retry after " + std::to_string(secs) + " s"),
                      key->name, secs};
    }
  }
  return Decision{Status::Ok(), key->name, 0};
}

StatusOr<std::string> Authorizer::CreateKey(const KeySpec& spec) {
  ASSIGN_OR_RETURN(std::string key, auth::CreateKey(store_, spec));
  if (Status s = Reload(); !s.ok()) {
    LOG_WARN(
        "API key created, but the key cache could not be reloaded; it is retried within a "
        "second",
        {{"error", s.message()}});
  }
  return key;
}

StatusOr<std::vector<ApiKeyRecord>> Authorizer::ListKeys() const {
  if (store_ == nullptr) {
    return Status::FailedPrecondition("API keys need a registry store, and this server has none");
  }
  return store_->ApiKeys();
}

Status Authorizer::RevokeKey(std::string_view name) {
  RETURN_IF_ERROR(auth::RevokeKey(store_, name));
  return Reload();
}

}  // namespace berth::auth
