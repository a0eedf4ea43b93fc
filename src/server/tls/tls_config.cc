#include "server/tls/tls_config.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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

}  // namespace berth
