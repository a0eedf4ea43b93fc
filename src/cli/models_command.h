// `berth models ...`: the registry's command line, a client of a running
// server's admin API (docs/registry.md, "Command line").
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "net/http_client.h"

namespace berth::cli {

// Exit codes: as `berth serve`, 2 means the command line itself is wrong.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// The usage lines (printed with every usage error), and the rest of --help.
extern const char kModelsSynopsis[];
extern const char kModelsHelp[];

enum class ModelsVerb {
  kList,
  kShow,
  kHistory,
  kPromote,
  kRollback,
  kPush,
  kSplit,
  kShadow,
  kArchive,
  kRestore,
  kDelete,
  kBaseline,
};

// One VERSION=WEIGHT argument of split.
struct SplitWeight {
  int64_t version = 0;  // > 0
  int32_t weight = 0;   // > 0 (the server takes weights up to INT32_MAX)
};

struct ModelsCommand {
  ModelsVerb verb = ModelsVerb::kList;
  std::string url;                  // checked when used (ParseServerUrl), not here
  // --api-key, else $BERTH_API_KEY when run; sent as Authorization: Bearer.
  std::string api_key;
  std::string ca_file;  // --ca-file (else $BERTH_CA_FILE, else the system's CAs)
  // --cert and --key: a client certificate for a server that wants mutual
  // TLS (else $BERTH_CERT_FILE and $BERTH_KEY_FILE); no key: in the cert's file.
  std::string cert_file;
  std::string key_file;
  std::string model;                // empty for list; --name for push
  int64_t version = 0;              // promote, shadow (unless --off), archive, restore, delete; > 0
  std::string alias = "production"; // promote, rollback and split
  std::optional<std::string> reason;
  bool json = false;
  int64_t timeout_secs = 30;
  // push: the artifact's path and the metadata file's; both read when run.
  std::string file;
  std::optional<std::string> metadata_file;
  std::optional<std::string> config_file;  // push --config: the model's config file
  bool allow_signature_change = false;
  // split: two or more, each version once, in the order given.
  std::vector<SplitWeight> split;
  // split: the request header whose value keeps a client on one version
  // (--sticky-key; the server checks the name).
  std::optional<std::string> sticky_key;
  // archive and delete: take the model's last serving version away too.
  bool force = false;
  // shadow: the share of the traffic copied to `version`, 1..100; 0 with
  // --off, which stops the shadow (and takes no VERSION).
  int32_t percent = 0;
  bool shadow_off = false;
  // baseline: NAME[:VERSION] (a number or an alias; none: the model's
  // default), and exactly one source: --from-window, --file PATH (read when
  // run) or --clear.
  std::string version_selector;
  bool from_window = false;
  std::optional<std::string> baseline_file;
  bool clear = false;
};

// Parses the arguments after `berth models`: VERB, then flags and positional
// arguments in any order; `--flag value` and `--flag=value` both work.
// InvalidArgument, saying what is wrong, for anything that is a usage error.
StatusOr<ModelsCommand> ParseModelsCommand(const std::vector<std::string_view>& args);

// One VERSION=WEIGHT argument of split, e.g. "3=90". InvalidArgument, quoting
// the argument, unless both are positive whole numbers (the weight at most
// INT32_MAX).
StatusOr<SplitWeight> ParseSplitWeight(std::string_view text);

// The TLS files a command's --url uses: its --ca-file, --cert and --key,
// else the environment's (net::TlsFilesOrDefault). InvalidArgument for
// --cert or --key with an http:// URL, or --key without --cert.
StatusOr<net::TlsFiles> ClientTlsFiles(const net::ServerUrl& url, const std::string& ca_file,
                                       const std::string& cert_file, const std::string& key_file);

// Runs `berth models ARGS...` and returns the process exit code: 0 on success,
// 1 when the server is unreachable or answers with an error (its message goes
// to `err`), 2 on a usage error (the message and kModelsSynopsis go to `err`).
// `--help` anywhere prints the synopsis and kModelsHelp to `out`; returns 0.
int RunModelsCommand(const std::vector<std::string_view>& args, std::FILE* out, std::FILE* err);

}  // namespace berth::cli
