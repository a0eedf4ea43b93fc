// berth: the command line. Flags and main() only; the Server does the work.
#include <pthread.h>
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cli/keys_command.h"
#include "cli/models_command.h"
#include "core/byte_size.h"
#include "core/logging.h"
#include "core/model_name.h"
#include "core/version.h"
#include "server/server.h"

namespace {

constexpr const char* kUsage = R"(berth - serve machine-learning models over the Open Inference Protocol

Usage:
  berth serve --model-repository DIR [options]
  berth models list|show|history|promote|rollback|push|split|shadow|archive|restore|delete|
               baseline --url URL ...
                           a running server's model registry (berth models --help)
  berth keys create|list|revoke ...
                           API keys (berth keys --help; docs/security.md)
  berth --version
  berth --help

Options for serve:
  --model-repository DIR   directory of <model>/config.yaml and <model>/<version>/model.onnx
  --model-name NAME        serve DIR as the one model NAME, in the layouts KServe's storage
                           initializer leaves in /mnt/models: DIR/model.onnx (any one .onnx
                           file, with or without a config beside it), one model's directory
                           (version directories, a config or none), or a repository
                           holding NAME/ (docs/deploy.md)
  --host ADDR              address to listen on (default 127.0.0.1)
  --http-port N            REST port (default 8000; 0 picks a free port; -1 disables)
  --grpc-port N            gRPC port (default 8001; 0 picks a free port; -1 disables)
  --http-threads N         threads serving HTTP and running inference (default 2)
  --grpc-threads N         gRPC completion-queue threads (default 0: one per usable core)
  --max-request-bytes N    largest accepted request body (default 67108864)
  --max-inflight-bytes N   bytes all requests in flight may hold at once (REST bodies, wire
                           and decompressed; gRPC infer messages); beyond it 503 or
                           UNAVAILABLE (default: the larger of 1 GiB
                           and twice --max-request-bytes; at least --max-request-bytes)
  --max-upload-bytes SIZE  largest registry push (the artifact streams to disk, so it is not
                           bounded by --max-request-bytes; default 4G; 0 reads pushes into
                           memory like other requests)
  --max-connections N      REST connections open at once; more are answered 503 and closed
                           (default 0: the open-file limit is raised to its hard limit, an
                           eighth of it (at least 64) is kept free, and REST gets three
                           quarters of the rest; all of it with gRPC off; what
                           --grpc-max-connections leaves if that is given)
  --grpc-max-connections N gRPC connections open at once; more are reset at once (default 0:
                           the other quarter, or what --max-connections leaves if given;
                           together they stay below the open-file limit; docs/security.md)
  --idle-timeout-secs N    close a REST connection with no complete request, and a gRPC
                           connection with no call, for this long (gRPC sends GOAWAY first:
                           clients reconnect for their next call; default 65)
  --header-timeout-secs N  close a REST connection whose request header (or TLS handshake)
                           is not whole N s after its first byte (a new connection: after
                           accept), e.g. one header byte a second, and a gRPC connection
                           whose TLS handshake and HTTP/2 preface and settings are not done
                           N s after accept (default 10)
  --min-body-rate N        close a REST connection whose body arrives slower than N bytes/s
                           on average, after a grace of --header-timeout-secs (default 1024;
                           0: bodies are bounded only by --idle-timeout-secs)
  --max-header-bytes N     largest REST request header; larger is answered 431 (default 16384)
  --request-timeout MS     longest an inference request may take from its arrival in the
                           core, unless it asks for less (gRPC deadline, v2 `timeout`
                           parameter in microseconds); still queued then: 504 /
                           DEADLINE_EXCEEDED, without running (default 0: no limit)
  --python PATH            the interpreter of `backend: python` models' workers; it must
                           import the berth package (default python3)
  --strict-readiness B     ready only when every model has a ready version (default true)
  --shutdown-grace-ms N    how long SIGTERM waits for in-flight requests (default 10000)
  --repository-poll-secs N rescan the repository every N s: load new models and versions,
                           unload removed ones (default 0: only at start and on request)
  --memory-budget SIZE     memory the loaded model versions may hold, in bytes or with a K, M
                           or G suffix (e.g. 2G); a load that would not fit is refused
                           (HTTP 507, gRPC RESOURCE_EXHAUSTED) and the serving versions
                           stay (default 0: no limit)
  --memory-factor F        a version not measured yet needs its artifact's size times F
                           (default 2); once loaded, its measured resident growth is used
  --log-level L            debug | info | warn | error (default info)
  --log-format F           text | json (default text)
  --platform P             also speak a cloud container contract: sagemaker | vertex | azure
                           (default $BERTH_PLATFORM, else none); see docs/platforms.md. The
                           platform's environment then sets what the flags above leave
                           unset: host 0.0.0.0, the port, the model repository
  --registry R             the registry store (versions, aliases, audit): sqlite:PATH,
                           postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (replicas sharing one
                           store, artifacts included; see docs/registry.md), or none
                           (default: sqlite at DIR/.berth/registry.db when it can be created)
  --require-auth           every route and RPC but liveness and readiness needs an API key
                           (Authorization: Bearer KEY) granting its scope: infer, read or
                           admin (berth keys create; docs/security.md)
  --allow-remote-admin B   without --require-auth: accept admin requests (repository
                           load/unload, registry push/promote/split/shadow/rollback, API
                           keys) from any client, not only from this machine (default false)
  --default-model NAME     the model that answers the platform routes when a request names
                           none (default: the repository's only model)
  --require-signed-models  load a version only if it carries an OpenSSF model signature
                           (model.sig, from the model-signing package) by a trusted signer
                           that matches every file of the version (docs/security.md)
  --trusted-signers PEM... the signers' EC public keys, for --require-signed-models
  --tls-cert PEM           serve REST and gRPC over TLS (1.2 or later) with this certificate
                           chain; needs --tls-key. SIGHUP re-reads the files (REST at once,
                           gRPC within a second) without dropping connections
  --tls-key PEM            the certificate's private key
  --tls-client-ca PEM      require client certificates signed by these CAs (mutual TLS)
  --alerts FILE            alert rules for every model or named ones, and the webhook they
                           notify (YAML; docs/monitoring.md#alerts); models add their own in
                           config.yaml `alerts:`
  --alert-interval-ms N    evaluate the alert rules every N ms (default 15000)
)";

int Fail(const std::string& message) {
  std::fprintf(stderr, "berth: %s\n(see berth --help)\n", message.c_str());
  return 2;
}

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

int Serve(const std::vector<std::string_view>& args) {
  berth::ServerOptions options;
  berth::LogLevel level = berth::LogLevel::kInfo;
  berth::LogFormat format = berth::LogFormat::kText;
  berth::ExplicitFlags given;
  std::string_view platform;
  bool platform_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view flag = args[i];
    std::string_view value;
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::fputs(berth::logs::kLogsUsage, stdout);
      return 0;
    }
    if (flag == "--require-auth") {
      options.require_auth = true;
      continue;
    }
    if (flag == "--require-signed-models") {
      options.require_signed_models = true;
      continue;
    }
    if (flag == "--trusted-signers") {
      // One or more PEM files, up to the next flag.
      const size_t first = i + 1;
      while (i + 1 < args.size() && !args[i + 1].starts_with("--")) {
        options.trusted_signers.emplace_back(args[++i]);
      }
      if (i + 1 == first) return Fail("--trusted-signers needs at least one PEM file");
      continue;
    }
    if (auto eq = flag.find('='); eq != std::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Fail("flag " + std::string(flag) + " needs a value");
    }
    const std::string bad = "invalid value '" + std::string(value) + "' for " + std::string(flag);
    int64_t grace = 0;
    if (flag == "--model-repository") {
      options.model_repository = std::string(value);
      given.model_repository = true;
    } else if (flag == "--model-name") {
      if (berth::Status name = berth::ValidateModelName(value); !name.ok()) {
        return Fail("--model-name: " + name.message());
      }
      options.model_name = std::string(value);
    } else if (flag == "--host") {
      options.host = std::string(value);
      given.host = true;
    } else if (flag == "--http-port") {
      given.http_port = true;
      if (!ParseNumber(value, &options.http_port) || options.http_port < -1 ||
          options.http_port > 65535) {
        return Fail(bad);
      }
    } else if (flag == "--grpc-port") {
      if (!ParseNumber(value, &options.grpc_port) || options.grpc_port < -1 ||
          options.grpc_port > 65535) {
        return Fail(bad);
      }
    } else if (flag == "--http-threads") {
      if (!ParseNumber(value, &options.http_threads) || options.http_threads < 1) return Fail(bad);
    } else if (flag == "--repository-poll-secs") {
      if (!ParseNumber(value, &options.repository_poll_secs) || options.repository_poll_secs < 0) {
        return Fail(bad);
      }
    } else if (flag == "--grpc-threads") {
      if (!ParseNumber(value, &options.grpc_threads) || options.grpc_threads < 0) return Fail(bad);
    } else if (flag == "--max-request-bytes") {
      if (!ParseNumber(value, &options.max_request_bytes) || options.max_request_bytes == 0) {
        return Fail(bad);
      }
    } else if (flag == "--max-inflight-bytes") {
      if (!ParseNumber(value, &options.max_inflight_bytes) || options.max_inflight_bytes == 0) {
        return Fail(bad);
      }
    } else if (flag == "--max-connections") {
      if (!ParseNumber(value, &options.max_connections) || options.max_connections < 0) {
        return Fail(bad);
      }
    } else if (flag == "--grpc-max-connections") {
      if (!ParseNumber(value, &options.grpc_max_connections) ||
          options.grpc_max_connections < 0) {
        return Fail(bad);
      }
    } else if (flag == "--idle-timeout-secs") {
      if (!ParseNumber(value, &options.idle_timeout_secs) || options.idle_timeout_secs < 1) {
        return Fail(bad);
      }
    } else if (flag == "--header-timeout-secs") {
      if (!ParseNumber(value, &options.header_timeout_secs) || options.header_timeout_secs < 1) {
        return Fail(bad);
      }
    } else if (flag == "--min-body-rate") {
      if (!ParseNumber(value, &options.min_body_rate)) return Fail(bad);
    } else if (flag == "--max-header-bytes") {
      if (!ParseNumber(value, &options.max_header_bytes) || options.max_header_bytes < 1024) {
        return Fail(bad + " (at least 1024)");
      }
    } else if (flag == "--python") {
      if (value.empty()) return Fail(bad);
      options.python_interpreter = std::string(value);
    } else if (flag == "--request-timeout") {
      int64_t ms = 0;
      if (!ParseNumber(value, &ms) || ms < 0) return Fail(bad);
      options.request_timeout = std::chrono::milliseconds(ms);
    } else if (flag == "--strict-readiness") {
      if (value != "true" && value != "false") return Fail(bad);
      options.strict_readiness = value == "true";
    } else if (flag == "--shutdown-grace-ms") {
      if (!ParseNumber(value, &grace) || grace < 0) return Fail(bad);
      options.shutdown_grace = std::chrono::milliseconds(grace);
    } else if (flag == "--max-upload-bytes") {
      auto size = berth::ParseByteSize(value);
      if (!size.ok()) return Fail("--max-upload-bytes: " + size.status().message());
      options.max_upload_bytes = *size;
    } else if (flag == "--memory-budget") {
      auto size = berth::ParseByteSize(value);
      if (!size.ok()) return Fail("--memory-budget: " + size.status().message());
      options.memory_budget_bytes = *size;
    } else if (flag == "--memory-factor") {
      double factor = 0;
      if (!ParseNumber(value, &factor) || !(factor > 0 && factor <= 1000)) {
        return Fail(bad + " (a number above 0, at most 1000)");
      }
      options.memory_factor = factor;
    } else if (flag == "--log-level") {
      if (!berth::ParseLogLevel(value, &level)) return Fail(bad);
    } else if (flag == "--log-format") {
      if (value != "text" && value != "json") return Fail(bad);
      format = value == "json" ? berth::LogFormat::kJson : berth::LogFormat::kText;
    } else if (flag == "--platform") {
      platform = value;
      platform_given = true;
    } else if (flag == "--registry") {
      options.registry = std::string(value);
    } else if (flag == "--require-auth") {
      if (value != "true" && value != "false") return Fail(bad);
      options.require_auth = value == "true";
    } else if (flag == "--allow-remote-admin") {
      if (value != "true" && value != "false") return Fail(bad);
      options.allow_remote_admin = value == "true";
    } else if (flag == "--tls-cert") {
      options.tls.cert_file = std::string(value);
    } else if (flag == "--tls-key") {
      options.tls.key_file = std::string(value);
    } else if (flag == "--tls-client-ca") {
      options.tls.client_ca_file = std::string(value);
    } else if (flag == "--alerts") {
      options.alerts_file = std::string(value);
    } else if (flag == "--alert-interval-ms") {
      int64_t ms = 0;
      if (!ParseNumber(value, &ms) || ms < 10 || ms > 3'600'000) {
        return Fail(bad + " (from 10 to 3600000)");
      }
      options.alert_interval = std::chrono::milliseconds(ms);
    } else if (flag == "--default-model") {
      if (berth::Status name = berth::ValidateModelName(value); !name.ok()) {
        return Fail("--default-model: " + name.message());
      }
      options.platform.default_model = std::string(value);
    } else if (berth::Status logs; berth::logs::ParseLogsFlag(flag, value, &options.logs, &logs)) {
      if (!logs.ok()) return Fail(logs.message());
    } else {
      return Fail("unknown flag " + std::string(flag));
    }
  }
  if (!platform_given) {
    const char* env = std::getenv("BERTH_PLATFORM");
    platform = env == nullptr ? "" : env;
  }
  if (!berth::ParsePlatform(platform, &options.platform.platform)) {
    return Fail("unknown platform '" + std::string(platform) + "' (" +
                (platform_given ? "--platform" : "BERTH_PLATFORM") +
                "): expected sagemaker, vertex or azure");
  }
  berth::Status env_status = berth::ApplyPlatformEnvironment(
      [](const char* name) { return static_cast<const char*>(std::getenv(name)); }, given,
      &options);
  if (!env_status.ok()) return Fail(env_status.message());
  if (options.model_repository.empty()) return Fail("serve needs --model-repository DIR");
  if (berth::InflightCapacity(options) < options.max_request_bytes) {
    return Fail("--max-inflight-bytes must be at least --max-request-bytes, or no request of "
                "the largest size could ever be served");
  }
  if (berth::Status tls = berth::ValidateTlsConfig(options.tls); !tls.ok()) {
    return Fail(tls.message());
  }
  berth::SetLogLevel(level);
  berth::SetLogFormat(format);

  // Every thread the server starts inherits this mask, so SIGINT, SIGTERM
  // and SIGHUP reach only the sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  berth::Server server(options);
  berth::Status status = server.Start();
  if (!status.ok()) {
    LOG_ERROR("cannot start", {{"error", status.message()}});
    return 1;
  }
  LOG_INFO("berth is serving", {{"version", berth::kBerthVersion}});
  int received = 0;
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) server.Reload();
  LOG_INFO("shutting down", {{"signal", strsignal(received)}});
  server.Stop();
  LOG_INFO("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    std::fputs(berth::logs::kLogsUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::printf("berth %s\n", berth::kBerthVersion);
    return 0;
  }
  if (args[0] == "serve") {
    return Serve(std::vector<std::string_view>(args.begin() + 1, args.end()));
  }
  if (args[0] == "keys") {
    return berth::cli::RunKeysCommand(std::vector<std::string_view>(args.begin() + 1, args.end()),
                                      stdout, stderr);
  }
  if (args[0] == "models") {
    return berth::cli::RunModelsCommand(
        std::vector<std::string_view>(args.begin() + 1, args.end()), stdout, stderr);
  }
  return Fail("unknown command '" + std::string(args[0]) + "'");
}
