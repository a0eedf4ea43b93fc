// The OpenSSL set-up that the HTTP client (its client certificate, for
// mutual TLS) and the server's TLS (its certificate) share: a certificate
// chain and its private key read from PEM files into a context, with errors
// that name the file and say what is wrong. Its own small library
// (berth_tls_files, OpenSSL and the core only).
#pragma once

#include <string>

#include "core/status.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace berth::net {

// How messages name the two files, e.g. {"the certificate --tls-cert",
// "the private key --tls-key"}.
struct PemFileNames {
  std::string certificate;
  std::string key;
};

// OpenSSL's reason for the calling thread's last failures ("unknown OpenSSL
// error" when none is queued), and clears its error queue.
std::string OpenSslError();

// Loads the certificate chain in `cert_file` (PEM, the leaf first) and the
// private key in `key_file` (PEM; it may be the same file) into `ctx`, and
// checks that the key is the certificate's: InvalidArgument naming the file
// otherwise ("cannot load NAME 'FILE': REASON", the system's reason for a
// file that cannot be opened, "... does not match the certificate ..." for
// a key of another certificate). Clears OpenSSL's error queue first.
Status UseCertificateAndKey(SSL_CTX* ctx, const std::string& cert_file,
                            const std::string& key_file, const PemFileNames& names);

}  // namespace berth::net
