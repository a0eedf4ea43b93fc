#include "cli/models_command.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <utility>

#include "net/http_client.h"
#include "cli/models_format.h"
#include "core/model_name.h"
#include "registry/version_files.h"
#include "registry/version_metadata.h"

namespace berth::cli {

using net::AddApiKey;
using net::EncodePathSegment;
using net::HttpClient;
using net::HttpHeaders;
using net::HttpResponse;
using net::ParseServerUrl;
using net::ServerUrl;

const char kModelsSynopsis[] = R"(Usage:
  berth models list     --url URL [NAME] [--json]
  berth models show     --url URL [NAME] [--json]
  berth models history  --url URL [NAME] [--json]
  berth models promote  --url URL NAME VERSION [--alias production] [--reason TEXT]
  berth models rollback --url URL NAME [--alias production] [--reason TEXT]
  berth models push     --url URL --name NAME FILE [--metadata meta.json]
                        [--config config.yaml] [--allow-signature-change] [--reason TEXT]
  berth models split    --url URL NAME VERSION=WEIGHT VERSION=WEIGHT... [--alias production]
                        [--sticky-key HEADER] [--reason TEXT]
  berth models shadow   --url URL NAME VERSION --percent 1..100 [--reason TEXT]
  berth models shadow   --url URL NAME [VERSION] --off [--reason TEXT]
  berth models archive  --url URL NAME VERSION [--force] [--reason TEXT]
  berth models restore  --url URL NAME VERSION [--reason TEXT]
  berth models delete   --url URL NAME VERSION [--force] [--reason TEXT]
  berth models baseline --url URL NAME[:VERSION] (--from-window | --file profile.json | --clear)
                        [--reason TEXT]
)";

const char kModelsHelp[] = R"(
Commands (each talks to a running `berth serve`; see docs/registry.md):
  list       every model with its aliases and versions (with NAME: that model's)
  show       one model: its default version, aliases, shadow, and each version's
             state, format, size, creation time and digest (without NAME: every
             model, one after the other)
  history    one model's audit records (promotions, rollbacks, ...), oldest
             first (without NAME: every model's)
  promote    point the alias at VERSION; the server loads the version first and
             leaves the alias where it was if the version does not load
  rollback   point the alias back at the version it pointed at before
  push       upload FILE (e.g. model.onnx) as NAME's next version; the server
             loads it before storing it and refuses it if it does not load.
             The new version number is printed alone on the last line:
               v=$(berth models push --url URL --name iris model.onnx | tail -1)
             Pushing does not move production: promote the version to serve it.
  split      send the alias's traffic to two or more versions by weight, e.g.
             3=90 4=10 (a 90/10 canary); a promote or rollback ends the split
  shadow     copy --percent of the model's traffic to VERSION too; its answers
             are compared with the live ones (in /metrics and show) and never
             returned. --off stops it (with VERSION: only if VERSION is the shadow)
  archive    take VERSION out of service but keep it (shown as ARCHIVED); a
             restart or a repository poll does not bring it back
  restore    make an archived VERSION a candidate to serve again
  delete     remove VERSION's files for good; its record stays (DELETED) and its
             number is never used again
             archive and delete refuse a version an alias, a split or the
             shadow uses, and the model's last serving version unless --force
  baseline   set the drift baseline of VERSION (default: the model's default
             version) from its current window of sampled requests, or from a
             "berth-baseline/1" profile file; --clear goes back to the one in
             the version's metadata (docs/monitoring.md)

Options:
  --url URL            the server's REST address, http[s]://HOST[:PORT], e.g.
                       http://127.0.0.1:8000
  --json               print the server's JSON answer as it is (for scripts)
  --alias NAME         the alias promote, rollback and split move (default production)
  --reason TEXT        why, recorded in the model's history (push, promote,
                       rollback, split, shadow, archive, restore, delete)
  --sticky-key HEADER  split: the request header (gRPC metadata key) whose value
                       keeps a client on one version (default Berth-Routing-Key),
                       or input:NAME for the value of the request's input NAME
  --force              archive, delete: even the model's last serving version
  --percent P          shadow: the share of the traffic copied, 1 to 100
  --off                shadow: stop shadowing
  --name NAME          push: the model to add a version to (created by its first push)
  --metadata FILE      push: a JSON object stored with the version (metrics,
                       dataset, ...); shown by `show --json`
  --config FILE        push: the model's config.yaml, for a first push (a later
                       push may repeat the model's config, never change it)
  --allow-signature-change
                       push: accept an artifact whose inputs or outputs differ
                       from the serving version's (refused otherwise)
  --from-window        baseline: profile the version's current window
  --file FILE          baseline: a "berth-baseline/1" JSON profile
  --clear              baseline: remove the stored baseline
  --timeout-secs N     give up when the server has not answered after N s (default 30)
  --ca-file FILE       an https:// URL's server certificate must chain to this PEM file
                       (default $BERTH_CA_FILE, else the system's CAs)
  --cert FILE          a client certificate (PEM) for a server that wants mutual TLS
                       (--tls-client-ca); default $BERTH_CERT_FILE
  --key FILE           --cert's private key (PEM; default $BERTH_KEY_FILE, else in
                       --cert's file)
  --api-key KEY        the API key to send (default $BERTH_API_KEY); a server run with
                       --require-auth needs one (read for list, show and history, admin
                       for the rest)

promote, rollback, push, split, shadow, archive, restore, delete and baseline are accepted
only from the server's own machine unless it runs with --require-auth (and the
key has the admin scope) or with --allow-remote-admin true.
Exit codes: 0 done; 1 the server refused (its message is printed) or could not be
reached; 2 the command line is wrong.
)";

namespace {

// One year: far beyond any real wait, and far from overflowing chrono.
constexpr int64_t kMaxTimeoutSecs = 365 * 24 * 3600;

// File paths are quoted whole in messages up to this length.
constexpr size_t kMaxPathShown = 4096;

// The server refuses a push whose metadata is larger.
constexpr size_t kMaxMetadataBytes = 1 << 20;

const char* VerbName(ModelsVerb verb) {
  switch (verb) {
    case ModelsVerb::kList: return "list";
    case ModelsVerb::kShow: return "show";
    case ModelsVerb::kHistory: return "history";
    case ModelsVerb::kPromote: return "promote";
    case ModelsVerb::kRollback: return "rollback";
    case ModelsVerb::kPush: return "push";
    case ModelsVerb::kSplit: return "split";
    case ModelsVerb::kShadow: return "shadow";
    case ModelsVerb::kArchive: return "archive";
    case ModelsVerb::kRestore: return "restore";
    case ModelsVerb::kDelete: return "delete";
    case ModelsVerb::kBaseline: return "baseline";
  }
  return "?";
}

bool ParsePositive(std::string_view s, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size() && *out > 0;
}

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                     rapidjson::CrtAllocator, rapidjson::kWriteValidateEncodingFlag>;

bool IsValidUtf8(std::string_view s) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  return writer.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// The JSON body of promote, rollback, split, shadow, archive, restore and
// delete (docs/registry.md).
std::string MutationBody(const ModelsCommand& command) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  if (command.verb == ModelsVerb::kShadow) {
    // {"percent": 0} stops the shadow; the server refuses a version with it.
    if (!command.shadow_off) {
      writer.Key("version");
      writer.Int64(command.version);
    }
    writer.Key("percent");
    writer.Int(command.shadow_off ? 0 : command.percent);
  }
  if (command.verb == ModelsVerb::kPromote) {
    writer.Key("version");
    writer.Int64(command.version);
  }
  if (command.verb == ModelsVerb::kSplit) {
    writer.Key("versions");
    writer.StartObject();
    for (const SplitWeight& w : command.split) {
      writer.Key(std::to_string(w.version).c_str());
      writer.Int(w.weight);
    }
    writer.EndObject();
    if (command.sticky_key.has_value()) {
      writer.Key("sticky_key");
      writer.String(command.sticky_key->data(),
                    static_cast<rapidjson::SizeType>(command.sticky_key->size()));
    }
  }
  const bool status_change = command.verb == ModelsVerb::kArchive ||
                             command.verb == ModelsVerb::kRestore ||
                             command.verb == ModelsVerb::kDelete;
  if (command.force) {
    writer.Key("force");
    writer.Bool(true);
  }
  // A shadow is the model's, and a version's status the version's: no alias.
  if (command.verb != ModelsVerb::kShadow && !status_change) {
    writer.Key("alias");
    writer.String(command.alias.data(), static_cast<rapidjson::SizeType>(command.alias.size()));
  }
  if (command.reason.has_value()) {
    writer.Key("reason");
    writer.String(command.reason->data(), static_cast<rapidjson::SizeType>(command.reason->size()));
  }
  writer.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

// Appends the whole of the file at `path` to `out`; `what` names it in the
// error ("the artifact", "the metadata file").
Status AppendFile(const std::string& path, const std::string& what, std::string* out) {
  const auto failed = [&](int error) {
    return Status::InvalidArgument("cannot read " + what + " '" +
                                   PrintableExcerpt(path, kMaxPathShown) + "': " +
                                   std::strerror(error));
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return failed(errno);
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) out->append(buffer, n);
  const int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error != 0) return failed(error);
  return Status::Ok();
}

// The push request's body: the metadata file's JSON object (when given),
// the config file (when given; the server checks it), then the artifact's
// bytes; `metadata_length` and `config_length` are the former two's sizes.
// A directory (a Python-runtime version) is sent whole: its file list (its
// size in `files_length`; what ListVersionFiles takes), then the files.
Status PushBody(const ModelsCommand& command, std::string* body, size_t* metadata_length,
                size_t* config_length, size_t* files_length) {
  *metadata_length = 0;
  *config_length = 0;
  *files_length = 0;
  if (command.metadata_file.has_value()) {
    const std::string what = "the metadata file";
    RETURN_IF_ERROR(AppendFile(*command.metadata_file, what, body));
    const std::string quoted =
        what + " '" + PrintableExcerpt(*command.metadata_file, kMaxPathShown) + "'";
    if (body->size() > kMaxMetadataBytes) {
      return Status::InvalidArgument(quoted + " is over 1 MiB, the server's limit");
    }
    // The server's own check (registry/version_metadata.h), before sending.
    if (Status s = CheckVersionMetadata(*body).status(); !s.ok()) {
      return Status::InvalidArgument(quoted + ": " + s.message());
    }
    *metadata_length = body->size();
  }
  if (command.config_file.has_value()) {
    const std::string what = "the config file";
    RETURN_IF_ERROR(AppendFile(*command.config_file, what, body));
    *config_length = body->size() - *metadata_length;
    if (*config_length == 0 || *config_length > kMaxMetadataBytes) {
      return Status::InvalidArgument(
          what + " '" + PrintableExcerpt(*command.config_file, kMaxPathShown) + "' is " +
          (*config_length == 0 ? "empty" : "over 1 MiB, the server's limit"));
    }
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(command.file, ec)) {
    return AppendFile(command.file, "the artifact", body);
  }
  StatusOr<std::vector<VersionFile>> files = ListVersionFiles(command.file);
  if (!files.ok()) {
    return Status::InvalidArgument("the directory '" +
                                   PrintableExcerpt(command.file, kMaxPathShown) +
                                   "': " + files.status().message());
  }
  rapidjson::StringBuffer list;
  rapidjson::Writer<rapidjson::StringBuffer> w(list);
  w.StartObject();
  w.Key("files");
  w.StartArray();
  for (const VersionFile& f : *files) {
    w.StartObject();
    w.Key("name");
    w.String(f.name.data(), static_cast<rapidjson::SizeType>(f.name.size()));
    w.Key("size");
    w.Int64(f.size);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  body->append(list.GetString(), list.GetSize());
  *files_length = list.GetSize();
  for (const VersionFile& f : *files) {
    RETURN_IF_ERROR(AppendFile((std::filesystem::path(command.file) / f.name).string(),
                               "the file '" + f.name + "'", body));
  }
  return Status::Ok();
}

// The baseline request's body: {"from_window": true} or {"profile": FILE},
// and the reason.
StatusOr<std::string> BaselineBody(const ModelsCommand& command) {
  std::string profile;
  if (command.baseline_file.has_value()) {
    const std::string what = "the profile file";
    RETURN_IF_ERROR(AppendFile(*command.baseline_file, what, &profile));
    const std::string quoted =
        what + " '" + PrintableExcerpt(*command.baseline_file, kMaxPathShown) + "'";
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(
        profile.data(), profile.size());
    if (doc.HasParseError()) {
      return Status::InvalidArgument(quoted + " is not valid JSON: " +
                                     rapidjson::GetParseError_En(doc.GetParseError()) +
                                     " (offset " + std::to_string(doc.GetErrorOffset()) + ")");
    }
    if (!doc.IsObject()) {
      return Status::InvalidArgument(quoted +
                                     " must hold a JSON object {\"format\": \"berth-baseline/1\", ...}");
    }
  }
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  if (command.from_window) {
    writer.Key("from_window");
    writer.Bool(true);
  } else {
    writer.Key("profile");
    writer.RawValue(profile.data(), profile.size(), rapidjson::kObjectType);
  }
  if (command.reason.has_value()) {
    writer.Key("reason");
    writer.String(command.reason->data(), static_cast<rapidjson::SizeType>(command.reason->size()));
  }
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// "3=90 4=10", as the command line gave it, and its sticky key.
std::string SplitText(const ModelsCommand& command) {
  std::string out;
  for (const SplitWeight& w : command.split) {
    if (!out.empty()) out += " ";
    out += std::to_string(w.version) + "=" + std::to_string(w.weight);
  }
  if (command.sticky_key.has_value()) {
    out += command.sticky_key->starts_with("input:") ? " keyed by " : " keyed by header ";
    out += *command.sticky_key;
  }
  return out;
}

}  // namespace

namespace {

// show or history without NAME: every model's answer in the list's order;
// --json as {"models": [answer, ...]}.
int EveryModel(const ModelsCommand& command, HttpClient& client, std::FILE* out, std::FILE* err) {
  const auto fail = [&](const std::string& message) {
    std::fprintf(err, "berth: %s\n", message.c_str());
    return kExitFailure;
  };
  const auto get = [&](const std::string& path) -> StatusOr<std::string> {
    StatusOr<HttpResponse> r = client.Get(path);
    if (!r.ok()) return r.status();
    if (r->status < 200 || r->status > 299) {
      return Status::Internal(ErrorMessage(r->status, r->body));
    }
    return std::move(r->body);
  };
  StatusOr<std::string> list = get("/v2/registry/models");
  if (!list.ok()) return fail(list.status().message());
  StatusOr<std::vector<std::string>> names = ListedModelNames(*list);
  if (!names.ok()) return fail(names.status().message());
  const bool history = command.verb == ModelsVerb::kHistory;
  std::string json = "{\"models\":[";
  std::string text;
  for (const std::string& name : *names) {
    StatusOr<std::string> body = get("/v2/registry/models/" + EncodePathSegment(name) +
                                     (history ? "/history" : ""));
    if (!body.ok()) return fail(body.status().message());
    json += (json.back() == '[' ? "" : ",") + *body;
    StatusOr<std::string> shown = history ? FormatHistory(*body) : FormatModelDetails(*body);
    if (!shown.ok()) return fail(shown.status().message());
    text += (text.empty() ? "" : "\n") + (history ? "model " + name + ":\n" : "") + *shown;
  }
  json += "]}\n";
  if (names->empty()) text = "no models\n";
  std::fputs(command.json ? json.c_str() : text.c_str(), out);
  return kExitOk;
}

// The shadow version in a GET /v2/registry/models/{m} answer; nullopt: none.
StatusOr<std::optional<int64_t>> ShadowVersion(std::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::Internal("the server's answer is not a JSON object");
  }
  const auto shadow = doc.FindMember("shadow");
  if (shadow == doc.MemberEnd() || shadow->value.IsNull()) return std::optional<int64_t>();
  if (!shadow->value.IsObject() || !shadow->value.HasMember("version") ||
      !shadow->value["version"].IsInt64()) {
    return Status::Internal("the server's answer has no shadow version");
  }
  return std::optional<int64_t>(shadow->value["version"].GetInt64());
}

}  // namespace

StatusOr<ModelsCommand> ParseModelsCommand(const std::vector<std::string_view>& args) {
  const auto usage = [](std::string message) {
    return Status::InvalidArgument(std::move(message));
  };
  static constexpr std::string_view kVerbList =
      "list, show, history, promote, rollback, push, split, shadow, archive, restore, delete or "
      "baseline";
  if (args.empty()) return usage("models needs a command: " + std::string(kVerbList));
  ModelsCommand command;
  const std::string_view verb = args[0];
  if (verb == "list") {
    command.verb = ModelsVerb::kList;
  } else if (verb == "show") {
    command.verb = ModelsVerb::kShow;
  } else if (verb == "history") {
    command.verb = ModelsVerb::kHistory;
  } else if (verb == "promote") {
    command.verb = ModelsVerb::kPromote;
  } else if (verb == "rollback") {
    command.verb = ModelsVerb::kRollback;
  } else if (verb == "push") {
    command.verb = ModelsVerb::kPush;
  } else if (verb == "split") {
    command.verb = ModelsVerb::kSplit;
  } else if (verb == "shadow") {
    command.verb = ModelsVerb::kShadow;
  } else if (verb == "archive") {
    command.verb = ModelsVerb::kArchive;
  } else if (verb == "restore") {
    command.verb = ModelsVerb::kRestore;
  } else if (verb == "delete") {
    command.verb = ModelsVerb::kDelete;
  } else if (verb == "baseline") {
    command.verb = ModelsVerb::kBaseline;
  } else {
    return usage("unknown models command '" + PrintableExcerpt(verb) + "': expected " +
                 std::string(kVerbList));
  }
  const std::string name = std::string("models ") + VerbName(command.verb);
  const bool moves_alias = command.verb == ModelsVerb::kPromote ||
                           command.verb == ModelsVerb::kRollback ||
                           command.verb == ModelsVerb::kSplit;
  const bool pushes = command.verb == ModelsVerb::kPush;
  const bool shadows = command.verb == ModelsVerb::kShadow;
  const bool takes_force =
      command.verb == ModelsVerb::kArchive || command.verb == ModelsVerb::kDelete;
  const bool status_change = takes_force || command.verb == ModelsVerb::kRestore;
  const bool baselines = command.verb == ModelsVerb::kBaseline;
  const bool records_reason = moves_alias || shadows || status_change || baselines || pushes;
  bool percent_given = false;

  std::vector<std::string_view> positional;
  std::vector<std::string_view> seen;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string_view flag = args[i];
    if (flag.size() < 2 || flag[0] != '-') {
      positional.push_back(flag);
      continue;
    }
    std::optional<std::string_view> value;
    if (auto eq = flag.find('='); eq != std::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    const std::string flag_text = PrintableExcerpt(flag);
    const bool push_flag =
        flag == "--name" || flag == "--metadata" || flag == "--config" ||
        flag == "--allow-signature-change";
    const bool shadow_flag = flag == "--percent" || flag == "--off";
    const bool baseline_flag = flag == "--from-window" || flag == "--file" || flag == "--clear";
    if (flag != "--url" && flag != "--api-key" && flag != "--ca-file" && flag != "--cert" &&
        flag != "--key" && flag != "--json" &&
        flag != "--timeout-secs" &&
        flag != "--alias" && flag != "--reason" && flag != "--sticky-key" && flag != "--force" &&
        !push_flag && !shadow_flag && !baseline_flag) {
      return usage("unknown flag " + flag_text + " for " + name);
    }
    if (flag == "--sticky-key" && command.verb != ModelsVerb::kSplit) {
      return usage(flag_text + " applies to split, not to " +
                   std::string(VerbName(command.verb)));
    }
    if (flag == "--force" && !takes_force) {
      return usage(flag_text + " applies to archive and delete, not to " +
                   std::string(VerbName(command.verb)));
    }
    if (flag == "--alias" && !moves_alias) {
      return usage(flag_text + " applies to promote, rollback and split, not to " +
                   VerbName(command.verb));
    }
    if (flag == "--reason" && !records_reason) {
      return usage(flag_text +
                   " applies to push, promote, rollback, split, shadow, archive, restore, delete "
                   "and baseline, not to " + VerbName(command.verb));
    }
    if (baseline_flag && !baselines) {
      return usage(flag_text + " applies to baseline, not to " +
                   std::string(VerbName(command.verb)));
    }
    if (push_flag && !pushes) {
      return usage(flag_text + " applies to push, not to " + std::string(VerbName(command.verb)));
    }
    if (shadow_flag && !shadows) {
      return usage(flag_text + " applies to shadow, not to " +
                   std::string(VerbName(command.verb)));
    }
    for (std::string_view earlier : seen) {
      if (earlier == flag) return usage(flag_text + " is given twice");
    }
    seen.push_back(flag);
    if (flag == "--json" || flag == "--allow-signature-change" || flag == "--off" ||
        flag == "--force" || flag == "--from-window" || flag == "--clear") {
      if (value.has_value()) return usage(flag_text + " takes no value");
      (flag == "--json"          ? command.json
       : flag == "--off"         ? command.shadow_off
       : flag == "--force"       ? command.force
       : flag == "--from-window" ? command.from_window
       : flag == "--clear"       ? command.clear
                                 : command.allow_signature_change) = true;
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) return usage("flag " + flag_text + " needs a value");
      value = args[++i];
    }
    const std::string bad = "invalid value '" + PrintableExcerpt(*value) + "' for " + flag_text;
    if (flag == "--url") {
      if (value->empty()) return usage(bad);
      command.url = std::string(*value);
    } else if (flag == "--ca-file") {
      if (value->empty()) return usage(bad);
      command.ca_file = std::string(*value);
    } else if (flag == "--cert" || flag == "--key") {
      if (value->empty()) return usage(bad);
      (flag == "--cert" ? command.cert_file : command.key_file) = std::string(*value);
    } else if (flag == "--api-key") {
      // Never echoed: it is a secret.
      if (value->empty() || value->find_first_of("\r\n") != std::string_view::npos) {
        return usage("invalid value for --api-key");
      }
      command.api_key = std::string(*value);
    } else if (flag == "--timeout-secs") {
      if (!ParsePositive(*value, &command.timeout_secs) ||
          command.timeout_secs > kMaxTimeoutSecs) {
        return usage(bad + ": expected a number of seconds from 1 to " +
                     std::to_string(kMaxTimeoutSecs));
      }
    } else if (flag == "--name") {
      if (Status valid = ValidateModelName(*value); !valid.ok()) return valid;
      command.model = std::string(*value);
    } else if (flag == "--percent") {
      int64_t percent = 0;
      if (!ParsePositive(*value, &percent) || percent > 100) {
        return usage(bad + ": expected a whole number from 1 to 100 (--off stops the shadow)");
      }
      command.percent = static_cast<int32_t>(percent);
      percent_given = true;
    } else if (flag == "--file") {
      if (value->empty()) return usage(bad + ": expected the path of a JSON profile");
      command.baseline_file = std::string(*value);
    } else if (flag == "--metadata") {
      if (value->empty()) return usage(bad + ": expected the path of a JSON file");
      command.metadata_file = std::string(*value);
    } else if (flag == "--config") {
      if (value->empty()) return usage(bad + ": expected the path of a config.yaml");
      command.config_file = std::string(*value);
    } else {
      if (!IsValidUtf8(*value)) return usage(bad + ": it is not valid UTF-8");
      if (flag == "--alias") {
        if (value->empty()) return usage(bad + ": an alias needs a name");
        command.alias = std::string(*value);
      } else if (flag == "--sticky-key") {
        if (value->empty()) return usage(bad + ": expected a header name, e.g. X-User-Id");
        command.sticky_key = std::string(*value);
      } else {
        command.reason = std::string(*value);
      }
    }
  }

  if (command.url.empty()) return usage(name + " needs --url URL, e.g. --url http://127.0.0.1:8000");
  if (!command.key_file.empty() && command.cert_file.empty()) {
    return usage("--key goes with --cert (the client certificate)");
  }
  if (pushes) {
    if (command.model.empty()) return usage(name + " needs --name NAME, the model to push to");
    if (positional.size() != 1) {
      return usage(name + " takes FILE, the artifact to push, got " +
                   std::to_string(positional.size()) + " arguments");
    }
    if (positional[0].empty()) return usage(name + ": FILE is empty");
    command.file = std::string(positional[0]);
    return command;
  }
  if (command.verb == ModelsVerb::kSplit) {
    if (positional.empty()) return usage(name + " takes NAME and VERSION=WEIGHT pairs");
    if (Status valid = ValidateModelName(positional[0]); !valid.ok()) return valid;
    command.model = std::string(positional[0]);
    for (size_t i = 1; i < positional.size(); ++i) {
      StatusOr<SplitWeight> pair = ParseSplitWeight(positional[i]);
      if (!pair.ok()) return pair.status();
      for (const SplitWeight& earlier : command.split) {
        if (earlier.version == pair->version) {
          return usage("version " + std::to_string(pair->version) + " is given twice");
        }
      }
      command.split.push_back(*pair);
    }
    if (command.split.size() < 2 && ParseSplitWeight(positional[0]).ok()) {
      return usage(name + " takes NAME first, then the VERSION=WEIGHT pairs ('" +
                   PrintableExcerpt(positional[0]) + "' looks like a pair, not a model name)");
    }
    if (command.split.size() < 2) {
      return usage(name + " needs at least two VERSION=WEIGHT pairs, e.g. 3=90 4=10 (got " +
                   std::to_string(command.split.size()) + "); to send all traffic to one " +
                   "version, promote it");
    }
    return command;
  }
  if (baselines) {
    const int sources = (command.from_window ? 1 : 0) + (command.baseline_file ? 1 : 0) +
                        (command.clear ? 1 : 0);
    if (sources != 1) {
      return usage(name + " needs exactly one of --from-window, --file FILE and --clear");
    }
    if (positional.size() != 1) {
      return usage(name + " takes NAME[:VERSION], got " + std::to_string(positional.size()) +
                   " arguments");
    }
    const std::string_view target = positional[0];
    const size_t colon = target.find(':');
    const std::string_view model = target.substr(0, colon);
    if (Status valid = ValidateModelName(model); !valid.ok()) return valid;
    command.model = std::string(model);
    if (colon != std::string_view::npos) {
      const std::string_view version = target.substr(colon + 1);
      if (version.empty() || version.size() > 64) {
        return usage(name + ": VERSION after ':' must be a version number or an alias");
      }
      command.version_selector = std::string(version);
    }
    return command;
  }
  if (shadows && command.shadow_off) {
    if (percent_given) return usage(name + ": --off and --percent exclude each other");
    if (positional.size() > 2) {
      return usage(name + " --off takes NAME [VERSION], got " +
                   std::to_string(positional.size()) + " arguments");
    }
  } else if (shadows && !percent_given) {
    return usage(name + " needs --percent P (1 to 100), or --off to stop the shadow");
  }
  const bool takes_version = command.verb == ModelsVerb::kPromote ||
                             (shadows && !command.shadow_off) || status_change;
  // list, show and history take NAME or not; shadow --off takes VERSION
  // (the shadow it stops) or not.
  const bool reads = command.verb == ModelsVerb::kList || command.verb == ModelsVerb::kShow ||
                     command.verb == ModelsVerb::kHistory;
  size_t wanted = takes_version ? 2 : 1;
  if ((reads && positional.size() <= 1) || (shadows && command.shadow_off && !positional.empty())) {
    wanted = positional.size();
  }
  if (positional.size() != wanted) {
    static constexpr const char* kWanted[] = {"no model name", "NAME", "NAME and VERSION"};
    return usage(name + " takes " + (reads ? "at most NAME" : kWanted[wanted]) + ", got " +
                 std::to_string(positional.size()) + " argument" +
                 (positional.size() == 1 ? "" : "s"));
  }
  if (wanted >= 1) {
    if (Status valid = ValidateModelName(positional[0]); !valid.ok()) return valid;
    command.model = std::string(positional[0]);
  }
  if (wanted == 2 && !ParsePositive(positional[1], &command.version)) {
    return usage("VERSION must be a positive whole number, got '" +
                 PrintableExcerpt(positional[1]) + "'");
  }
  return command;
}

StatusOr<SplitWeight> ParseSplitWeight(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("invalid split '" + PrintableExcerpt(text) + "': " + why);
  };
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos) return bad("expected VERSION=WEIGHT, e.g. 3=90");
  SplitWeight out;
  if (!ParsePositive(text.substr(0, eq), &out.version)) {
    return bad("the version must be a positive whole number");
  }
  int64_t weight = 0;
  if (!ParsePositive(text.substr(eq + 1), &weight) ||
      weight > std::numeric_limits<int32_t>::max()) {
    return bad("the weight must be a whole number from 1 to " +
               std::to_string(std::numeric_limits<int32_t>::max()));
  }
  out.weight = static_cast<int32_t>(weight);
  return out;
}

StatusOr<net::TlsFiles> ClientTlsFiles(const net::ServerUrl& url, const std::string& ca_file,
                                       const std::string& cert_file,
                                       const std::string& key_file) {
  if (!url.tls && !(cert_file.empty() && key_file.empty())) {
    return Status::InvalidArgument("--cert and --key are for an https:// URL, not " + url.text);
  }
  return net::TlsFilesOrDefault({.ca_file = ca_file, .cert_file = cert_file, .key_file = key_file});
}

int RunModelsCommand(const std::vector<std::string_view>& args, std::FILE* out,
                     std::FILE* err) {
  for (std::string_view arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::fputs(kModelsSynopsis, out);
      std::fputs(kModelsHelp, out);
      return kExitOk;
    }
  }
  if (!args.empty() && args[0] == "help") {
    std::fputs(kModelsSynopsis, out);
    std::fputs(kModelsHelp, out);
    return kExitOk;
  }
  StatusOr<ModelsCommand> parsed = ParseModelsCommand(args);
  if (!parsed.ok()) {
    std::fprintf(err, "berth: %s\n\n%s(see berth models --help)\n",
                 parsed.status().message().c_str(), kModelsSynopsis);
    return kExitUsage;
  }
  const ModelsCommand& command = *parsed;
  const auto fail = [&](const std::string& message) {
    std::fprintf(err, "berth: %s\n", message.c_str());
    return kExitFailure;
  };
  // A malformed or https:// URL is a failure to reach the server, not a
  // malformed command line: exit 1 with the reason.
  StatusOr<ServerUrl> url = ParseServerUrl(command.url);
  if (!url.ok()) return fail(url.status().message());
  std::string push_body;
  size_t metadata_length = 0;
  size_t config_length = 0;
  size_t files_length = 0;
  std::string baseline_body;
  if (command.verb == ModelsVerb::kBaseline && !command.clear) {
    StatusOr<std::string> body = BaselineBody(command);
    if (!body.ok()) return fail(body.status().message());
    baseline_body = std::move(body).value();
  }
  if (command.verb == ModelsVerb::kPush) {
    if (Status read =
            PushBody(command, &push_body, &metadata_length, &config_length, &files_length);
        !read.ok()) {
      return fail(read.message());
    }
  }
  StatusOr<net::TlsFiles> tls = ClientTlsFiles(*url, command.ca_file, command.cert_file,
                                               command.key_file);
  if (!tls.ok()) return fail(tls.status().message());
  HttpClient client(std::move(url).value(), std::chrono::seconds(command.timeout_secs), *tls);
  if (!client.tls_status().ok()) return fail(client.tls_status().message());
  if (Status key = AddApiKey(command.api_key, &client); !key.ok()) return fail(key.message());

  const auto failed = [&](const StatusOr<HttpResponse>& r) -> std::optional<std::string> {
    if (!r.ok()) return r.status().message();
    if (r->status < 200 || r->status > 299) return ErrorMessage(r->status, r->body);
    return std::nullopt;
  };
  if ((command.verb == ModelsVerb::kShow || command.verb == ModelsVerb::kHistory) &&
      command.model.empty()) {
    return EveryModel(command, client, out, err);
  }
  if (command.verb == ModelsVerb::kShadow && command.shadow_off && command.version > 0) {
    // --off with VERSION stops that shadow only: refused if another one runs.
    const StatusOr<HttpResponse> shown =
        client.Get("/v2/registry/models/" + EncodePathSegment(command.model));
    if (auto message = failed(shown)) return fail(*message);
    StatusOr<std::optional<int64_t>> current = ShadowVersion(shown->body);
    if (!current.ok()) return fail(current.status().message());
    if (*current != command.version) {
      return fail("version " + std::to_string(command.version) + " of model '" + command.model +
                  "' is not its shadow (" +
                  (*current ? "version " + std::to_string(**current) + " is"
                            : std::string("it has none")) +
                  "); nothing was changed");
    }
  }

  std::string target = "/v2/registry/models";
  if (!command.model.empty() && command.verb != ModelsVerb::kList) {
    target += "/" + EncodePathSegment(command.model);
  }
  StatusOr<HttpResponse> response = Status::Internal("unreachable");
  switch (command.verb) {
    case ModelsVerb::kList:
    case ModelsVerb::kShow:
      response = client.Get(target);
      if (command.verb == ModelsVerb::kList && !command.model.empty() && !failed(response)) {
        StatusOr<std::string> one = FilterModelList(response->body, command.model);
        if (!one.ok()) return fail(one.status().message());
        response->body = std::move(one).value();
      }
      break;
    case ModelsVerb::kHistory:
      response = client.Get(target + "/history");
      break;
    case ModelsVerb::kPromote:
      response = client.Post(target + "/promote", MutationBody(command));
      break;
    case ModelsVerb::kRollback:
      response = client.Post(target + "/rollback", MutationBody(command));
      break;
    case ModelsVerb::kSplit:
      response = client.Post(target + "/split", MutationBody(command));
      break;
    case ModelsVerb::kShadow:
      response = client.Post(target + "/shadow", MutationBody(command));
      break;
    case ModelsVerb::kArchive:
    case ModelsVerb::kRestore:
      response = client.Post(target + "/versions/" + std::to_string(command.version) + "/" +
                                 VerbName(command.verb),
                             MutationBody(command));
      break;
    case ModelsVerb::kDelete:
      response = client.Delete(target + "/versions/" + std::to_string(command.version),
                               MutationBody(command));
      break;
    case ModelsVerb::kBaseline: {
      std::string path = "/v2/models/" + EncodePathSegment(command.model);
      if (!command.version_selector.empty()) {
        path += "/versions/" + EncodePathSegment(command.version_selector);
      }
      path += "/baseline";
      response = command.clear ? client.Delete(path, "")
                               : client.Post(path, std::move(baseline_body));
      break;
    }
    case ModelsVerb::kPush: {
      HttpHeaders headers;
      if (command.metadata_file.has_value()) {
        headers.emplace_back("Berth-Metadata-Length", std::to_string(metadata_length));
      }
      if (config_length > 0) {
        headers.emplace_back("Berth-Config-Length", std::to_string(config_length));
      }
      if (files_length > 0) headers.emplace_back("Berth-Files-Length", std::to_string(files_length));
      // Percent-encoded: a header value cannot carry every UTF-8 text.
      if (command.reason && !command.reason->empty()) {
        headers.emplace_back("Berth-Reason", EncodePathSegment(*command.reason));
      }
      const char* query = command.allow_signature_change ? "?allow_signature_change=true" : "";
      response = client.Post(target + "/versions" + query, std::move(push_body),
                             "application/octet-stream", headers);
      break;
    }
  }
  if (!response.ok()) return fail(response.status().message());
  if (response->status < 200 || response->status > 299) {
    std::string message = ErrorMessage(response->status, response->body);
    if (response->status == 413 && command.verb == ModelsVerb::kPush) {
      message += "; the server's --max-upload-bytes sets the largest push it accepts";
    }
    return fail(message);
  }
  if (command.json) {
    const std::string& body = response->body;
    std::fwrite(body.data(), 1, body.size(), out);
    if (body.empty() || body.back() != '\n') std::fputc('\n', out);
    return kExitOk;
  }
  StatusOr<std::string> text = Status::Internal("unreachable");
  switch (command.verb) {
    case ModelsVerb::kList: text = FormatModelList(response->body); break;
    case ModelsVerb::kShow: text = FormatModelDetails(response->body); break;
    case ModelsVerb::kHistory: text = FormatHistory(response->body); break;
    case ModelsVerb::kPromote:
    case ModelsVerb::kRollback: text = FormatAliasMove(response->body); break;
    case ModelsVerb::kPush: text = FormatPush(response->body); break;
    case ModelsVerb::kSplit: text = FormatSplit(response->body, SplitText(command)); break;
    case ModelsVerb::kShadow: text = FormatShadow(response->body); break;
    case ModelsVerb::kArchive: text = FormatVersionStatus(response->body, "archived"); break;
    case ModelsVerb::kRestore: text = FormatVersionStatus(response->body, "restored"); break;
    case ModelsVerb::kDelete: text = FormatVersionStatus(response->body, "deleted"); break;
    case ModelsVerb::kBaseline:
      text = "model " + command.model + ": baseline " +
             (command.clear ? std::string("cleared")
                            : command.from_window ? std::string("set from the current window")
                                                  : "set from " + *command.baseline_file) +
             "\n";
      break;
  }
  if (!text.ok()) return fail(text.status().message());
  std::fputs(text->c_str(), out);
  return kExitOk;
}

}  // namespace berth::cli
