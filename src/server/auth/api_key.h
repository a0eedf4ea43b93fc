// API keys: their text form, how a request carries one, and how a secret is
// stored and checked.
//
// A key is "berth_<id>_<secret>": <id> is 12 lower-case hex digits (48 random
// bits) by which the server looks the key up; <secret> is 32 lower-case hex
// digits (128 random bits from OpenSSL's RAND_bytes). The store keeps the id,
// a random 16-byte salt and SHA-256(salt || secret), never the secret; the
// key is shown once, when it is created. docs/security.md says why one
// SHA-256 suffices here where a password would need a slow hash.
#pragma once

#include <array>
#include <atomic>
#include <string>
#include <string_view>

#include "core/status.h"

namespace berth::auth {

inline constexpr std::string_view kKeyPrefix = "berth_";
inline constexpr size_t kKeyIdDigits = 12;
inline constexpr size_t kKeySecretDigits = 32;
inline constexpr size_t kKeyLength = kKeyPrefix.size() + kKeyIdDigits + 1 + kKeySecretDigits;

// The two parts of a key, as views into the text it was parsed from.
struct KeyParts {
  std::string_view id;
  std::string_view secret;
};

// Splits a key's text. InvalidArgument (never quoting the text: it may be
// someone's key) unless it has exactly the form above.
StatusOr<KeyParts> ParseApiKey(std::string_view key);

// The credentials of an Authorization header value: "Bearer <token>" (the
// scheme in any case, then one or more spaces, then RFC 6750's b64token
// characters). Returns a view of the token. InvalidArgument, never quoting
// the value, for another scheme or a malformed token.
StatusOr<std::string_view> ParseBearer(std::string_view authorization);

// A new key, and what the store keeps of it (hex text).
struct NewKey {
  std::string key;  // shown once
  std::string id;
  std::string salt;  // 32 hex digits
  std::string hash;  // 64 hex digits: SHA-256(salt bytes || secret text)
};

// Internal if OpenSSL's generator fails (it is never seeded badly silently).
StatusOr<NewKey> GenerateApiKey();

// SHA-256(salt || secret) as 64 lower-case hex digits; `salt_hex` is the
// stored salt (decoded first). Empty if the salt is not hex.
std::string HashSecret(std::string_view salt_hex, std::string_view secret);

// Whether `secret` hashes to `hash_hex` with `salt_hex`. The hashes are
// compared with CRYPTO_memcmp, so the time taken does not depend on how
// much of the secret is right.
bool SecretMatches(std::string_view salt_hex, std::string_view hash_hex, std::string_view secret);

// The one secret shown to match a key's stored hash, remembered in memory
// (never written anywhere) so that the key's next requests are checked with
// one constant-time comparison instead of a SHA-256: the hash was most of
// the cost of --require-auth per request. Only a secret that SecretMatches
// accepted is remembered; the first one wins and is never replaced (a
// SHA-256 collision aside, there is only one). Lock-free and thread-safe.
class VerifiedSecret {
 public:
  // Whether `secret` is the remembered one; false while none is. The time
  // taken does not depend on how much of `secret` is right.
  bool Matches(std::string_view secret) const;
  // Remembers `secret` (kKeySecretDigits characters; others are ignored)
  // unless one is already.
  void Remember(std::string_view secret);

 private:
  enum State : int { kEmpty, kWriting, kSet };
  std::atomic<int> state_{kEmpty};
  // Written once, by the thread that moved state_ from kEmpty to kWriting,
  // and read only once state_ is kSet (release/acquire).
  std::array<char, kKeySecretDigits> secret_{};
};

}  // namespace berth::auth
