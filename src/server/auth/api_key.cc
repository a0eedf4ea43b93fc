#include "server/auth/api_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdint>

namespace berth::auth {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Hex(const unsigned char* bytes, size_t n) {
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHexDigits[bytes[i] >> 4];
    out[2 * i + 1] = kHexDigits[bytes[i] & 0xf];
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes hex text; false if it is not an even number of hex digits.
bool Unhex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->resize(hex.size() / 2);
  for (size_t i = 0; i < out->size(); ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

// RFC 6750's b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool IsB64Token(std::string_view s) {
  size_t i = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok) break;
  }
  if (i == 0) return false;
  for (; i < s.size(); ++i) {
    if (s[i] != '=') return false;
  }
  return true;
}

bool RandomHex(size_t bytes, std::string* out) {
  std::array<unsigned char, 32> buffer{};
  if (bytes > buffer.size() || RAND_bytes(buffer.data(), static_cast<int>(bytes)) != 1) {
    return false;
  }
  *out = Hex(buffer.data(), bytes);
  OPENSSL_cleanse(buffer.data(), buffer.size());
  return true;
}

}  // namespace

StatusOr<KeyParts> ParseApiKey(std::string_view key) {
  const auto bad = [] {
    return Status::InvalidArgument(
        "not a Berth API key (expected berth_<12 hex digits>_<32 hex "
        "digits>)");
  };
  if (key.size() != kKeyLength || !key.starts_with(kKeyPrefix)) return bad();
  const std::string_view id = key.substr(kKeyPrefix.size(), kKeyIdDigits);
  if (key[kKeyPrefix.size() + kKeyIdDigits] != '_') return bad();
  const std::string_view secret = key.substr(kKeyPrefix.size() + kKeyIdDigits + 1);
  if (!IsLowerHex(id) || !IsLowerHex(secret)) return bad();
  return KeyParts{id, secret};
}

StatusOr<std::string_view> ParseBearer(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size()) {
    return Status::InvalidArgument("the Authorization header must be 'Bearer <API key>'");
  }
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = authorization[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) {
      return Status::InvalidArgument("the Authorization header must be 'Bearer <API key>'");
    }
  }
  std::string_view rest = authorization.substr(kScheme.size());
  size_t spaces = 0;
  while (spaces < rest.size() && rest[spaces] == ' ') ++spaces;
  rest.remove_prefix(spaces);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  if (spaces == 0 || !IsB64Token(rest)) {
    return Status::InvalidArgument("the Authorization header must be 'Bearer <API key>'");
  }
  return rest;
}

StatusOr<NewKey> GenerateApiKey() {
  NewKey key;
  std::string secret;
  if (!RandomHex(kKeyIdDigits / 2, &key.id) || !RandomHex(kKeySecretDigits / 2, &secret) ||
      !RandomHex(16, &key.salt)) {
    return Status::Internal("cannot generate an API key: OpenSSL's random generator failed");
  }
  key.hash = HashSecret(key.salt, secret);
  key.key = std::string(kKeyPrefix) + key.id + "_" + secret;
  OPENSSL_cleanse(secret.data(), secret.size());
  return key;
}

std::string HashSecret(std::string_view salt_hex, std::string_view secret) {
  // Fetched once: an implicit fetch (EVP_sha256()) searches OpenSSL 3's
  // provider store, under its lock, on every initialisation.
  static EVP_MD* const fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  const EVP_MD* const sha256 = fetched != nullptr ? fetched : EVP_sha256();
  std::string salt;
  if (!Unhex(salt_hex, &salt)) return "";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, sha256, nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, salt.data(), salt.size()) == 1 &&
                  EVP_DigestUpdate(ctx, secret.data(), secret.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, digest, &size) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return "";
  return Hex(digest, size);
}

bool SecretMatches(std::string_view salt_hex, std::string_view hash_hex, std::string_view secret) {
  const std::string computed = HashSecret(salt_hex, secret);
  // Both are 64 hex digits for any key the store holds; the length check
  // leaks nothing about the secret.
  if (computed.empty() || computed.size() != hash_hex.size()) return false;
  return CRYPTO_memcmp(computed.data(), hash_hex.data(), computed.size()) == 0;
}

bool VerifiedSecret::Matches(std::string_view secret) const {
  if (state_.load(std::memory_order_acquire) != kSet || secret.size() != secret_.size()) {
    return false;
  }
  return CRYPTO_memcmp(secret_.data(), secret.data(), secret_.size()) == 0;
}

void VerifiedSecret::Remember(std::string_view secret) {
  if (secret.size() != secret_.size()) return;
  int expected = kEmpty;
  if (!state_.compare_exchange_strong(expected, kWriting, std::memory_order_relaxed)) return;
  secret.copy(secret_.data(), secret_.size());
  state_.store(kSet, std::memory_order_release);
}

}  // namespace berth::auth
