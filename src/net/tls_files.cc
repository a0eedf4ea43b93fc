#include "net/tls_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "core/model_name.h"

namespace berth::net {
namespace {

// The system's reason when `path` cannot be opened for reading: OpenSSL's
// own words for that ("system lib") say less.
std::optional<std::string> UnreadableReason(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return std::string(std::strerror(errno));
  std::fclose(f);
  return std::nullopt;
}

// Whether OpenSSL's first queued error says that the file holds nothing of
// the wanted kind (a certificate file without a key in it, a DER or empty
// file): PEM's "no start line", or OpenSSL 3's decoders finding no key.
bool NothingOfThatKind() {
  const unsigned long e = ERR_peek_error();
  return (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) ||
         (ERR_GET_LIB(e) == ERR_LIB_OSSL_DECODER && ERR_GET_REASON(e) == ERR_R_UNSUPPORTED);
}

}  // namespace

std::string OpenSslError() {
  std::string reason;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!reason.empty()) reason += "; ";
    reason += buf;
  }
  return reason.empty() ? "unknown OpenSSL error" : reason;
}

Status UseCertificateAndKey(SSL_CTX* ctx, const std::string& cert_file,
                            const std::string& key_file, const PemFileNames& names) {
  ERR_clear_error();
  const std::string cert_quoted = "'" + PrintableExcerpt(cert_file, 4096) + "'";
  const std::string key_quoted = "'" + PrintableExcerpt(key_file, 4096) + "'";
  if (auto why = UnreadableReason(cert_file)) {
    return Status::InvalidArgument("cannot load " + names.certificate + " " + cert_quoted + ": " +
                                   *why);
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    const std::string what = NothingOfThatKind()
                                 ? "no PEM certificate in it (" + OpenSslError() + ")"
                                 : OpenSslError();
    return Status::InvalidArgument("cannot load " + names.certificate + " " + cert_quoted + ": " +
                                   what);
  }
  if (auto why = UnreadableReason(key_file)) {
    return Status::InvalidArgument("cannot load " + names.key + " " + key_quoted + ": " + *why);
  }
  const auto mismatch = [&] {
    return Status::InvalidArgument(names.key + " " + key_quoted +
                                   " does not match the certificate " + cert_quoted + ": " +
                                   OpenSslError());
  };
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) return mismatch();
    const std::string what = NothingOfThatKind()
                                 ? "no PEM private key in it (" + OpenSslError() + ")"
                                 : OpenSslError();
    return Status::InvalidArgument("cannot load " + names.key + " " + key_quoted + ": " + what);
  }
  // OpenSSL 1.1 accepts a key of another certificate above (and drops the
  // certificate); the check says so either way.
  if (SSL_CTX_check_private_key(ctx) != 1) return mismatch();
  return Status::Ok();
}

}  // namespace berth::net
