// Authorizer: the one step every REST route and gRPC RPC passes before its
// handler runs (router.cc, grpc_server.cc): who is asking, and may they?
//
// Without --require-auth no credentials are read: routes of scope admin
// answer only clients on this machine (loopback), unless
// --allow-remote-admin; everything else is open. With --require-auth every
// route but the kNone ones (liveness, readiness, the platforms' health
// routes) needs "Authorization: Bearer <key>" (gRPC metadata
// "authorization") whose key grants the route's scope (scope.h): no key, or
// an unknown, malformed, expired or revoked one, is Unauthenticated (401);
// a key without the scope PermissionDenied (403); a key over its rate limit
// ResourceExhausted (429 with Retry-After). The decision is made before the
// route looks anything up, so a refusal never says whether a model exists.
//
// Keys live in the registry store; the Authorizer answers from a copy in
// memory keyed by the key's id, replaced whole by Reload() (after a change
// made through it, and every second from the Server, so that keys created by
// `berth keys create` or another replica are seen), so a request never waits
// for the store. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <functional>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/thread_annotations.h"
#include "registry/registry_store.h"
#include "server/auth/api_key.h"
#include "server/auth/scope.h"
#include "server/auth/token_bucket.h"

namespace berth::auth {

struct AuthOptions {
  bool require_auth = false;        // --require-auth
  bool allow_remote_admin = false;  // --allow-remote-admin (without --require-auth)
};

// What a request carries that the decision reads; views valid for the call.
struct Credentials {
  std::string_view authorization;  // the Authorization header's value; empty if none
  std::string_view peer;           // the client's IP address as text
  std::string_view model;          // the model the route names; empty if none
};

struct Decision {
  // OK, Unauthenticated, PermissionDenied or ResourceExhausted (a rate
  // limit: retry_after_secs > 0).
  Status status;
  // Who asks, for the audit log: the key's name, or the client's address
  // when no key was read.
  std::string actor;
  int64_t retry_after_secs = 0;

  bool ok() const { return status.ok(); }
};

// What `berth keys create` asks for.
struct KeySpec {
  std::string name;                 // 1..64 of [A-Za-z0-9_.-]
  std::vector<std::string> scopes;  // at least one; each as ParseGrant reads it
  double rate = 0;                  // requests per second; 0: no limit
  int64_t expires_days = 0;         // 0: never
};

// Parses "N/s" (or "N"), N a positive number up to 1e6.
StatusOr<double> ParseRate(std::string_view text);

// The key administration both the CLI (on a store it opens) and the
// /v2/keys routes (through Authorizer) use. CreateKey returns the key's
// text, which is shown once and never stored.
StatusOr<std::string> CreateKey(RegistryStore* store, const KeySpec& spec);
Status RevokeKey(RegistryStore* store, std::string_view name);

class Authorizer {
 public:
  // `store` may be null (no registry store): then there are no keys, and
  // --require-auth refuses every request that needs one.
  Authorizer(AuthOptions options, RegistryStore* store);

  // The decision for a request needing `needed`.
  Decision Authorize(const Credentials& credentials, Scope needed) const;

  bool require_auth() const { return options_.require_auth; }

  // Re-reads the keys from the store; keeps the current ones if it cannot.
  Status Reload();

  // Key administration through the store; each reloads on success.
  StatusOr<std::string> CreateKey(const KeySpec& spec);
  StatusOr<std::vector<ApiKeyRecord>> ListKeys() const;
  Status RevokeKey(std::string_view name);

 private:
  struct CachedKey {
    std::string name;
    std::string salt;
    std::string hash;
    std::vector<Grant> grants;
    std::optional<int64_t> expires;  // seconds since the Unix epoch
    bool revoked = false;
    std::shared_ptr<TokenBucket> bucket;  // null: no rate limit
    // Never null; kept across reloads, like the bucket.
    std::shared_ptr<VerifiedSecret> verified;
  };
  // Looks a key up by a view of its id, without building a string.
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
  };
  using KeyTable = std::unordered_map<std::string, CachedKey, IdHash, std::equal_to<>>;  // by id

  Decision AuthorizeKey(const Credentials& credentials, Scope needed) const;
  std::shared_ptr<const KeyTable> keys() const LOCKS_EXCLUDED(mu_);

  const AuthOptions options_;
  RegistryStore* const store_;
  // What an unknown id's secret is checked against, the same way as a known
  // key's, so that its refusal costs the same: a salt and hash no secret
  // matches, and a remembered "secret" that is not hex (so never equal to a
  // parsed one, yet compared in full). Set at construction.
  CachedKey dummy_key_;
  mutable std::mutex mu_;
  std::shared_ptr<const KeyTable> keys_ GUARDED_BY(mu_);
  // Serialises Reload(): two reloads must not publish out of order.
  std::mutex reload_mu_;
};

// Whether `peer` (an IP address as text) is a loopback address (IPv4, IPv6,
// or IPv4-mapped IPv6).
bool IsLoopback(std::string_view peer);

}  // namespace berth::auth
