#include "registry/artifact_digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <array>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

namespace berth {

namespace {

std::string Hex(const unsigned char* md, unsigned int size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xF]);
  }
  return out;
}

}  // namespace

ArtifactDigest Sha256Bytes(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &size, EVP_sha256(), nullptr);
  return {Hex(md, size), static_cast<int64_t>(bytes.size())};
}

Status WriteFileDurably(const std::filesystem::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Internal("cannot create " + path.filename().string() + ": " + std::strerror(errno));
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return Status::Internal("cannot write " + path.filename().string() + ": " + why);
    }
    written += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const std::string why = synced ? std::string() : std::strerror(errno);
  ::close(fd);
  if (!synced) return Status::Internal("cannot sync " + path.filename().string() + ": " + why);
  return Status::Ok();
}

Status CopyFileTailDurably(const std::filesystem::path& source, uint64_t offset,
                           const std::filesystem::path& dest, uint64_t length) {
  const int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::Internal("cannot open the upload: " + std::string(std::strerror(errno)));
  const int out = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    const std::string why = std::strerror(errno);
    ::close(in);
    return Status::Internal("cannot create " + dest.filename().string() + ": " + why);
  }
  std::string why;
  std::vector<char> buffer(1 << 20);
  off_t at = static_cast<off_t>(offset);
  for (uint64_t left = length; left > 0;) {
    const ssize_t n =
        ::pread(in, buffer.data(), std::min<uint64_t>(buffer.size(), left), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) why = std::string("cannot read the upload: ") + std::strerror(errno);
    if (n <= 0) break;
    at += n;
    left -= static_cast<uint64_t>(n);
    for (ssize_t done = 0; done < n && why.empty();) {
      const ssize_t w = ::write(out, buffer.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) why = "cannot write " + dest.filename().string() + ": " + std::strerror(errno);
      else done += w;
    }
    if (!why.empty()) break;
  }
  if (why.empty() && ::fsync(out) != 0) why = "cannot sync " + dest.filename().string();
  ::close(in);
  ::close(out);
  return why.empty() ? Status::Ok() : Status::Internal(why);
}

Status SyncDirectory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::Internal(std::string("cannot open a directory to sync: ") + std::strerror(errno));
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return Status::Internal(std::string("cannot sync a directory: ") + std::strerror(errno));
  return Status::Ok();
}

StatusOr<std::string> ReadFileBytes(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + file.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::Internal("cannot read " + file.string());
  return bytes;
}

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
  out.digest = Hex(md, md_size);
  return out;
}

}  // namespace berth
