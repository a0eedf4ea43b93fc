// TlsConfig: the certificate files that turn on TLS for REST and gRPC alike
// (--tls-cert, --tls-key, --tls-client-ca), and TlsContext, the REST side's
// OpenSSL context built from them, reloadable without dropping connections.
//
// Both front ends serve the same files: REST through TlsContext (rebuilt on
// SIGHUP; connections keep the context they were accepted with, new ones get
// the new one), gRPC through a GrpcIdentityFile that Berth rewrites on
// SIGHUP and gRPC's file-watching certificate provider re-reads.
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

// The key and certificate chain that gRPC serves, in one PEM file (key
// first) that only Berth writes. gRPC's file-watching provider, given the
// operator's two files, reads them at two moments and serves whatever pair
// it finds: a new key beside the old certificate, while the files are
// replaced one after the other, fails every new gRPC handshake until its
// next read. Given this file as both its key and its chain instead, it only
// ever sees a pair that was checked to match, replaced whole by a rename.
// The file sits in a directory of its own, owner-only (0700, the file 0600),
// removed with the object. Not thread-safe: one writer (start, then SIGHUP).
class GrpcIdentityFile {
 public:
  // Writes the file from `config`'s key and certificate: InvalidArgument,
  // naming the file and the reason, unless they load and match.
  static StatusOr<std::unique_ptr<GrpcIdentityFile>> Create(const TlsConfig& config);
  ~GrpcIdentityFile();
  GrpcIdentityFile(const GrpcIdentityFile&) = delete;
  GrpcIdentityFile& operator=(const GrpcIdentityFile&) = delete;

  // What to give gRPC as both the private key and the certificate chain.
  const std::string& path() const { return path_; }

  // Re-reads `config`'s key and certificate and replaces the file with them
  // if they load and match; otherwise the file keeps the pair it has and
  // the error is returned.
  Status Update(const TlsConfig& config);

 private:
  GrpcIdentityFile(std::string dir, std::string path)
      : dir_(std::move(dir)), path_(std::move(path)) {}

  const std::string dir_;
  const std::string path_;
};

}  // namespace berth
