#include "registry/signed_models.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <system_error>

#include <rapidjson/document.h>

#include "registry/artifact_digest.h"
#include "registry/model_repository.h"

namespace berth {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPayloadType = "application/vnd.in-toto+json";
constexpr std::string_view kStatementType = "https://in-toto.io/Statement/v1";
constexpr std::string_view kPredicateType = "https://model_signing/signature/v1.0";

Status Refused(std::string_view why) {
  return Status::FailedPrecondition("signature check failed: " + std::string(why));
}

// Standard base64 (with padding), as the bundle's JSON carries bytes.
bool DecodeBase64(std::string_view in, std::string* out) {
  if (in.size() % 4 != 0) return false;
  out->resize(in.size() / 4 * 3);
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return false;
  size_t padding = 0;
  if (!in.empty() && in.back() == '=') padding = in.size() >= 2 && in[in.size() - 2] == '=' ? 2 : 1;
  out->resize(static_cast<size_t>(n) - padding);
  return true;
}

std::string_view Str(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return {};
  auto m = object.FindMember(name);
  if (m == object.MemberEnd() || !m->value.IsString()) return {};
  return {m->value.GetString(), m->value.GetStringLength()};
}

const rapidjson::Value* Member(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto m = object.FindMember(name);
  return m == object.MemberEnd() ? nullptr : &m->value;
}

bool HexToBytes(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  const auto nibble = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

// The files of `dir` as model-signing names them (relative, '/'-separated),
// apart from `ignored` (a path or any path under it); symlinks refused.
Status ListFiles(const fs::path& dir, const std::set<std::string>& ignored,
                 std::set<std::string>* files) {
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = fs::relative(it->path(), dir, ec).generic_string();
    if (ec) break;
    bool skip = false;
    for (const std::string& i : ignored) {
      skip = skip || name == i || name.starts_with(i + "/");
    }
    if (skip) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink(ec)) return Refused("'" + name + "' is a symbolic link");
    if (it->is_regular_file(ec)) files->insert(name);
  }
  if (ec) return Refused("cannot list the version's files: " + ec.message());
  return Status::Ok();
}

}  // namespace

struct SignedModelVerifier::Key {
  std::string path;
  EVP_PKEY* pkey = nullptr;
  const EVP_MD* digest = nullptr;  // by curve size, as model-signing signs
  ~Key() { EVP_PKEY_free(pkey); }
};

SignedModelVerifier::SignedModelVerifier(std::vector<std::unique_ptr<Key>> keys)
    : keys_(std::move(keys)) {}
SignedModelVerifier::~SignedModelVerifier() = default;

StatusOr<std::unique_ptr<SignedModelVerifier>> SignedModelVerifier::FromPemFiles(
    const std::vector<std::string>& paths) {
  if (paths.empty()) {
    return Status::InvalidArgument("--require-signed-models needs --trusted-signers PEM...");
  }
  std::vector<std::unique_ptr<Key>> keys;
  for (const std::string& path : paths) {
    auto bytes = ReadFileBytes(path);
    if (!bytes.ok()) {
      return Status::InvalidArgument("trusted signer '" + path + "': " + bytes.status().message());
    }
    auto key = std::make_unique<Key>();
    key->path = path;
    BIO* bio = BIO_new_mem_buf(bytes->data(), static_cast<int>(bytes->size()));
    key->pkey = bio != nullptr ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    if (key->pkey == nullptr || EVP_PKEY_get_base_id(key->pkey) != EVP_PKEY_EC) {
      return Status::InvalidArgument("trusted signer '" + path +
                                     "' is not a PEM elliptic-curve public key");
    }
    const int bits = EVP_PKEY_get_bits(key->pkey);
    key->digest = bits == 256 ? EVP_sha256() : bits == 384 ? EVP_sha384()
                                             : bits == 521 ? EVP_sha512() : nullptr;
    if (key->digest == nullptr) {
      return Status::InvalidArgument("trusted signer '" + path +
                                     "': only P-256, P-384 and P-521 keys are supported");
    }
    keys.push_back(std::move(key));
  }
  return std::unique_ptr<SignedModelVerifier>(new SignedModelVerifier(std::move(keys)));
}

Status SignedModelVerifier::Verify(const fs::path& version_dir) const {
  auto bundle_bytes = ReadFileBytes(version_dir / kModelSignatureFile);
  if (!bundle_bytes.ok()) {
    return Refused(std::string("the version is unsigned (no ") + kModelSignatureFile + ")");
  }
  rapidjson::Document bundle;
  bundle.Parse<rapidjson::kParseIterativeFlag>(bundle_bytes->data(), bundle_bytes->size());
  const rapidjson::Value* envelope =
      bundle.HasParseError() ? nullptr : Member(bundle, "dsseEnvelope");
  if (envelope == nullptr) {
    return Refused(std::string(kModelSignatureFile) + " is not a sigstore bundle with a DSSE envelope");
  }
  if (Str(*envelope, "payloadType") != kPayloadType) {
    return Refused("the envelope's payload is not in-toto JSON");
  }
  std::string payload;
  if (!DecodeBase64(Str(*envelope, "payload"), &payload) || payload.empty()) {
    return Refused("the envelope's payload is not base64");
  }
  // DSSE's pre-authentication encoding: what the signature covers.
  const std::string pae = "DSSEv1 " + std::to_string(kPayloadType.size()) + " " +
                          std::string(kPayloadType) + " " + std::to_string(payload.size()) + " " +
                          payload;
  const rapidjson::Value* signatures = Member(*envelope, "signatures");
  bool verified = false;
  if (signatures != nullptr && signatures->IsArray()) {
    for (const rapidjson::Value& s : signatures->GetArray()) {
      std::string sig;
      if (!DecodeBase64(Str(s, "sig"), &sig)) continue;
      for (const auto& key : keys_) {
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        verified = ctx != nullptr &&
                   EVP_DigestVerifyInit(ctx, nullptr, key->digest, nullptr, key->pkey) == 1 &&
                   EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()),
                                    sig.size(), reinterpret_cast<const unsigned char*>(pae.data()),
                                    pae.size()) == 1;
        EVP_MD_CTX_free(ctx);
        if (verified) break;
      }
      if (verified) break;
    }
  }
  if (!verified) return Refused("no trusted signer's key verifies the signature");

  // Signed, so the statement is the signer's; now it must describe these files.
  rapidjson::Document statement;
  statement.Parse<rapidjson::kParseIterativeFlag>(payload.data(), payload.size());
  if (statement.HasParseError() || Str(statement, "_type") != kStatementType) {
    return Refused("the payload is not an in-toto v1 statement");
  }
  if (Str(statement, "predicateType") != kPredicateType) {
    return Refused("the predicate is not model-signing's v1.0 signature ('" +
                   std::string(Str(statement, "predicateType")).substr(0, 120) + "')");
  }
  const rapidjson::Value* predicate = Member(statement, "predicate");
  const rapidjson::Value* serialization = predicate ? Member(*predicate, "serialization") : nullptr;
  const rapidjson::Value* resources = predicate ? Member(*predicate, "resources") : nullptr;
  if (serialization == nullptr || resources == nullptr || !resources->IsArray()) {
    return Refused("the predicate has no serialization or resources");
  }
  if (Str(*serialization, "method") != "files" || Str(*serialization, "hash_type") != "sha256") {
    return Refused("only the 'files' serialization with sha256 is supported (sign with "
                   "model_signing's default file hashing)");
  }
  std::set<std::string> ignored = {kModelSignatureFile, kVersionRecordFile};
  if (const rapidjson::Value* paths = Member(*serialization, "ignore_paths");
      paths != nullptr && paths->IsArray()) {
    for (const rapidjson::Value& p : paths->GetArray()) {
      if (p.IsString()) ignored.insert(fs::path(p.GetString()).lexically_normal().generic_string());
    }
  }
  // The subject's digest is the SHA-256 of the resources' digests in order:
  // a manifest edited after signing does not add up.
  std::map<std::string, std::string> signed_files;  // name -> hex digest
  std::string concatenated, raw;
  for (const rapidjson::Value& r : resources->GetArray()) {
    const std::string_view name = Str(r, "name"), digest = Str(r, "digest");
    if (name.empty() || Str(r, "algorithm") != "sha256" || !HexToBytes(digest, &raw) ||
        raw.size() != 32) {
      return Refused("a resource is not a named sha256 digest");
    }
    concatenated += raw;
    signed_files.emplace(std::string(name), std::string(digest));
  }
  const rapidjson::Value* subjects = Member(statement, "subject");
  const rapidjson::Value* subject =
      subjects != nullptr && subjects->IsArray() && subjects->Size() == 1 ? &(*subjects)[0]
                                                                          : nullptr;
  const rapidjson::Value* subject_digest = subject ? Member(*subject, "digest") : nullptr;
  const std::string root = Sha256Bytes(concatenated).digest.substr(7);  // past "sha256:"
  if (subject_digest == nullptr || Str(*subject_digest, "sha256") != root) {
    return Refused("the manifest's resources do not hash to its subject digest");
  }

  std::set<std::string> present;
  RETURN_IF_ERROR(ListFiles(version_dir, ignored, &present));
  for (const auto& [name, digest] : signed_files) {
    if (!present.contains(name)) return Refused("signed file '" + name + "' is missing");
  }
  for (const std::string& name : present) {
    auto it = signed_files.find(name);
    if (it == signed_files.end()) return Refused("file '" + name + "' is not covered by the signature");
    auto actual = Sha256File(version_dir / name);
    if (!actual.ok() || actual->digest.substr(7) != it->second) {
      return Refused("file '" + name + "' does not match its signed digest");
    }
  }
  return Status::Ok();
}

}  // namespace berth
