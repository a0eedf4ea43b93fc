// Trusted artifacts (--require-signed-models --trusted-signers PEM...): a
// version loads only if its directory carries an OpenSSF model signature
// (the `model-signing` package's sigstore bundle, `model.sig`, signed with
// an elliptic-curve key) made by one of the trusted keys and matching every
// file of the version. Verified here with OpenSSL: no Python at load time.
//
// What is checked, in order: the bundle's DSSE envelope (in-toto JSON
// payload) carries an ECDSA signature over its PAE encoding that one
// trusted public key verifies; the payload is an in-toto v1 statement with
// the model-signing v1.0 predicate, "files" serialization with SHA-256; its
// subject digest is the hash of its resources' digests (the manifest is
// whole); and the version directory holds exactly the files the resources
// list (no symlink, nothing missing, nothing added, each one's SHA-256 as
// signed), apart from the signature itself, the predicate's ignore_paths and
// Berth's own record (berth-version.json).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace berth {

// The signature file a version directory carries (model-signing's default).
inline constexpr const char* kModelSignatureFile = "model.sig";

class SignedModelVerifier {
 public:
  // Reads the trusted signers' public keys (PEM, EC P-256, P-384 or P-521).
  // InvalidArgument naming the file that cannot be read or used.
  static StatusOr<std::unique_ptr<SignedModelVerifier>> FromPemFiles(
      const std::vector<std::string>& paths);
  ~SignedModelVerifier();
  SignedModelVerifier(const SignedModelVerifier&) = delete;
  SignedModelVerifier& operator=(const SignedModelVerifier&) = delete;

  // OK if `version_dir` is signed by a trusted key and unchanged since;
  // otherwise FailedPrecondition saying what failed ("unsigned: no
  // model.sig", "file 'model.onnx' does not match its signed digest", ...).
  // Thread-safe.
  Status Verify(const std::filesystem::path& version_dir) const;

 private:
  struct Key;
  explicit SignedModelVerifier(std::vector<std::unique_ptr<Key>> keys);
  std::vector<std::unique_ptr<Key>> keys_;
};

}  // namespace berth
