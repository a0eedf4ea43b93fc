// `berth keys create|list|revoke`: API keys, made and revoked either in a
// registry store directly (--model-repository DIR: its SQLite store;
// --registry sqlite:PATH|postgresql://...) or through a running server's
// /v2/keys routes (--url URL, with an admin key under --require-auth).
// docs/security.md.
#pragma once

#include <cstdio>
#include <string_view>
#include <vector>

namespace berth::cli {

extern const char kKeysUsage[];

// Runs `berth keys ARGS...`; exit codes as RunModelsCommand's (0 done, 1
// refused or unreachable, 2 usage). `create` prints the key alone on its
// last line.
int RunKeysCommand(const std::vector<std::string_view>& args, std::FILE* out, std::FILE* err);

}  // namespace berth::cli
