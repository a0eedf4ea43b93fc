#include "server/tls/tls_config.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

#include <boost/asio/ssl/context.hpp>

#include "net/tls_files.h"

namespace berth {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites with forward secrecy and AEAD (Mozilla's "intermediate"
// list); TLS 1.3's suites are all of that kind and stay OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// TLS 1.3's suites, AES-128-GCM first: with AES-NI it costs the least per
// record of the three, and every one is forward-secret AEAD (the server's
// order is preferred, SSL_OP_CIPHER_SERVER_PREFERENCE).
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

StatusOr<std::shared_ptr<ssl::context>> Build(const TlsConfig& config) {
  if (config.cert_file.empty() || config.key_file.empty()) {
    return Status::InvalidArgument("TLS needs both --tls-cert and --tls-key");
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_DH_USE);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return Status::Internal("cannot set the TLS 1.2 ciphers: " + net::OpenSslError());
  }
  if (SSL_CTX_set_ciphersuites(native, kTls13Suites) != 1) {
    return Status::Internal("cannot set the TLS 1.3 cipher suites: " + net::OpenSslError());
  }
  RETURN_IF_ERROR(net::UseCertificateAndKey(
      native, config.cert_file, config.key_file,
      {.certificate = "the certificate --tls-cert", .key = "the private key --tls-key"}));
  if (config.mutual()) {
    if (SSL_CTX_load_verify_locations(native, config.client_ca_file.c_str(), nullptr) != 1) {
      return Status::InvalidArgument("cannot load the client CA --tls-client-ca '" +
                                     config.client_ca_file + "': " + net::OpenSslError());
    }
    // The CA names sent to clients, so that a client holding several
    // certificates picks one this server accepts.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(native, names);
    }
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return ctx;
}

StatusOr<std::string> ReadWhole(const std::string& path, std::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) {
    return Status::InvalidArgument("cannot read " + std::string(flag) + " '" + path + "'");
  }
  return std::move(text).str();
}

// The key and the certificate chain as one PEM text, key first, read once
// each and checked to match (what gRPC is given is exactly what was checked).
StatusOr<std::string> MatchingIdentityPem(const TlsConfig& config) {
  ASSIGN_OR_RETURN(std::string key_pem, ReadWhole(config.key_file, "--tls-key"));
  ASSIGN_OR_RETURN(std::string cert_pem, ReadWhole(config.cert_file, "--tls-cert"));
  ERR_clear_error();
  BIO* key_bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  BIO* cert_bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  Status status = Status::Ok();
  if (key == nullptr) {
    status = Status::InvalidArgument("cannot load the private key --tls-key '" + config.key_file +
                                     "': " + net::OpenSslError());
  } else if (cert == nullptr) {
    status = Status::InvalidArgument("cannot load the certificate --tls-cert '" + config.cert_file +
                                     "': " + net::OpenSslError());
  } else if (X509_check_private_key(cert, key) != 1) {
    status = Status::InvalidArgument("the private key '" + config.key_file +
                                     "' does not match the certificate '" + config.cert_file +
                                     "': " + net::OpenSslError());
  }
  EVP_PKEY_free(key);
  X509_free(cert);
  RETURN_IF_ERROR(status);
  if (!key_pem.empty() && key_pem.back() != '\n') key_pem += '\n';
  return key_pem + cert_pem;
}

}  // namespace

Status ValidateTlsConfig(const TlsConfig& config) {
  if (!config.enabled()) {
    if (config.mutual()) {
      return Status::InvalidArgument("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return Status::Ok();
  }
  return Build(config).status();
}

StatusOr<std::unique_ptr<TlsContext>> TlsContext::Create(const TlsConfig& config) {
  ASSIGN_OR_RETURN(std::shared_ptr<ssl::context> ctx, Build(config));
  std::unique_ptr<TlsContext> tls(new TlsContext(config));
  tls->current_ = std::move(ctx);
  return tls;
}

std::shared_ptr<ssl::context> TlsContext::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

Status TlsContext::Reload() {
  ASSIGN_OR_RETURN(std::shared_ptr<ssl::context> ctx, Build(config_));
  std::lock_guard lock(mu_);
  current_ = std::move(ctx);
  return Status::Ok();
}

StatusOr<std::unique_ptr<GrpcIdentityFile>> GrpcIdentityFile::Create(const TlsConfig& config) {
  std::error_code ec;
  std::string tmpl =
      (std::filesystem::temp_directory_path(ec) / "berth-grpc-identity-XXXXXX").string();
  if (ec || mkdtemp(tmpl.data()) == nullptr) {  // mode 0700
    return Status::Internal("cannot create a directory for gRPC's certificate: " +
                            std::string(std::strerror(errno)));
  }
  std::unique_ptr<GrpcIdentityFile> file(new GrpcIdentityFile(tmpl, tmpl + "/identity.pem"));
  RETURN_IF_ERROR(file->Update(config));
  return file;
}

GrpcIdentityFile::~GrpcIdentityFile() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Status GrpcIdentityFile::Update(const TlsConfig& config) {
  ASSIGN_OR_RETURN(const std::string pem, MatchingIdentityPem(config));
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::Internal("cannot write gRPC's certificate file: " +
                            std::string(std::strerror(errno)));
  }
  size_t written = 0;
  while (written < pem.size()) {
    const ssize_t n = ::write(fd, pem.data() + written, pem.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  const bool closed = ::close(fd) == 0;
  if (written != pem.size() || !closed || std::rename(tmp.c_str(), path_.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    return Status::Internal("cannot write gRPC's certificate file: " + reason);
  }
  return Status::Ok();
}

}  // namespace berth
