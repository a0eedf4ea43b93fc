#include "registry/artifact_digest.h"

#include <openssl/evp.h>

#include <array>
#include <fstream>
#include <memory>

namespace berth {

StatusOr<ArtifactDigest> Sha256File(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + file.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return Status::Internal("SHA-256 is not available");
  }
  ArtifactDigest out;
  std::array<char, 1 << 16> buffer;
  while (in) {
    in.read(buffer.data(), buffer.size());
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    if (EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(n)) != 1) {
      return Status::Internal("SHA-256 failed");
    }
    out.size += n;
  }
  if (in.bad()) return Status::Internal("cannot read " + file.string());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_size = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &md_size) != 1) return Status::Internal("SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  out.digest = "sha256:";
  for (unsigned int i = 0; i < md_size; ++i) {
    out.digest.push_back(kHex[md[i] >> 4]);
    out.digest.push_back(kHex[md[i] & 0xF]);
  }
  return out;
}

}  // namespace berth
