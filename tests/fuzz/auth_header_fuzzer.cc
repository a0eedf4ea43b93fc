// Fuzz target: the Authorization header as a request sends it, through the
// whole authorization step. The bytes are the header's value; they go to
//   ParseBearer: an accepted token is a view inside the value, non-empty,
//     of RFC 6750's characters only;
//   ParseApiKey: what it accepts has exactly the key's form;
//   Authorizer::Authorize with --require-auth over a store holding one key:
//     no header is ever accepted unless it carries that exact key, and every
//     refusal is UNAUTHENTICATED (401), and a value that may hold a key is
//     never quoted in a message.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "registry/registry_store.h"
#include "server/auth/api_key.h"
#include "server/auth/authorizer.h"

namespace {

namespace fs = std::filesystem;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

struct KeyStore {
  KeyStore() {
    std::string tmpl = (fs::temp_directory_path() / "berth_auth_fuzz_XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp");
    root = tmpl;
    auto opened = berth::OpenSqliteRegistryStore((root / "registry.db").string());
    if (!opened.ok()) Fail(opened.status().ToString());
    store = std::move(opened).value();
    authorizer = std::make_unique<berth::auth::Authorizer>(
        berth::auth::AuthOptions{.require_auth = true}, store.get());
    auto created = authorizer->CreateKey({"fuzz", {"infer:m"}, 0, 0});
    if (!created.ok()) Fail(created.status().ToString());
    key = *created;
  }
  ~KeyStore() {
    authorizer.reset();
    store.reset();
    std::error_code ignored;
    fs::remove_all(root, ignored);
  }
  fs::path root;
  std::unique_ptr<berth::RegistryStore> store;
  std::unique_ptr<berth::auth::Authorizer> authorizer;
  std::string key;
};

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

// A value that may hold a key: no refusal may quote it. (A value without
// one may happen to spell a piece of a fixed message.)
bool LooksLikeAKey(const std::string& value) { return value.find("berth_") != std::string::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string value(reinterpret_cast<const char*>(data), size);
  auto token = berth::auth::ParseBearer(value);
  if (token.ok()) {
    if (token->empty() || token->data() < value.data() ||
        token->data() + token->size() > value.data() + value.size()) {
      Fail("a token outside the value");
    }
    for (char c : *token) {
      if (!IsTokenChar(c)) Fail("a token with a character RFC 6750 does not allow");
    }
    auto parts = berth::auth::ParseApiKey(*token);
    if (parts.ok() && (token->size() != berth::auth::kKeyLength ||
                       parts->id.size() != berth::auth::kKeyIdDigits ||
                       parts->secret.size() != berth::auth::kKeySecretDigits)) {
      Fail("accepted a key of the wrong form");
    }
  } else if (LooksLikeAKey(value) && token.status().message().find(value) != std::string::npos) {
    Fail("a refusal quotes the header");
  }
  static KeyStore keys;
  const berth::auth::Decision d =
      keys.authorizer->Authorize({value, "192.0.2.1", "m"}, berth::auth::Scope::kInfer);
  const bool carries_key = token.ok() && *token == keys.key;
  if (d.ok() != carries_key) Fail("accepted without the key, or refused it");
  if (!d.ok()) {
    if (d.status.code() != berth::Status::Code::kUnauthenticated) {
      Fail("a refusal that is not UNAUTHENTICATED: " + d.status.ToString());
    }
    if (LooksLikeAKey(value) && d.status.message().find(value) != std::string::npos) {
      Fail("a refusal quotes the header");
    }
  }
  return 0;
}
