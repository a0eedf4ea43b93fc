// TlsConfig: the certificate files that turn on TLS for REST and gRPC alike
// (--tls-cert, --tls-key, --tls-client-ca), and TlsContext, the REST side's
// OpenSSL context built from them, reloadable without dropping connections.
//
// Both front ends read the same files: REST through TlsContext (rebuilt on
// SIGHUP; connections keep the context they were accepted with, new ones get
// the new one), gRPC through gRPC's own file-watching certificate provider,
// which re-reads the files when they change.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/status.h"
#include "core/thread_annotations.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace berth {

struct TlsConfig {
  std::string cert_file;       // PEM: the server's certificate chain
  std::string key_file;        // PEM: its private key
  std::string client_ca_file;  // PEM: CAs that sign client certificates; empty: no mTLS

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
  bool mutual() const { return !client_ca_file.empty(); }
};

// Checks that `config` is complete (a key with its certificate, a client CA
// only with both) and that the files load and match: InvalidArgument naming
// the file and OpenSSL's reason otherwise.
Status ValidateTlsConfig(const TlsConfig& config);

class TlsContext {
 public:
  // Builds the context from `config`'s files: TLS 1.2 or later (1.3 when
  // the client has it), forward-secret AEAD ciphers only, no compression or
  // renegotiation, and with a client CA, a verified client certificate
  // required.
  static StatusOr<std::unique_ptr<TlsContext>> Create(const TlsConfig& config);

  // The context for a connection accepted now.
  std::shared_ptr<boost::asio::ssl::context> Current() const LOCKS_EXCLUDED(mu_);

  // Re-reads the files. On failure the current context stays in use and the
  // error is returned: a half-written certificate never takes TLS down.
  Status Reload() LOCKS_EXCLUDED(mu_);

 private:
  explicit TlsContext(TlsConfig config) : config_(std::move(config)) {}

  const TlsConfig config_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_ GUARDED_BY(mu_);
};

}  // namespace berth
