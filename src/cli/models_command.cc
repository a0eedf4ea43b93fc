#include "cli/models_command.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <chrono>
#include <utility>

#include "cli/http_client.h"
#include "cli/models_format.h"
#include "core/model_name.h"

namespace berth::cli {

const char kModelsSynopsis[] = R"(Usage:
  berth models list     --url URL [--json]
  berth models show     --url URL NAME [--json]
  berth models history  --url URL NAME [--json]
  berth models promote  --url URL NAME VERSION [--alias production] [--reason TEXT]
  berth models rollback --url URL NAME [--alias production] [--reason TEXT]
)";

const char kModelsHelp[] = R"(
Commands (each talks to a running `berth serve`; see docs/registry.md):
  list       every model with its aliases and versions
  show       one model: its default version, aliases, and each version's state,
             format, size, creation time and digest
  history    one model's audit records (promotions, rollbacks, ...), oldest first
  promote    point the alias at VERSION; the server loads the version first and
             leaves the alias where it was if the version does not load
  rollback   point the alias back at the version it pointed at before

Options:
  --url URL            the server's REST address, http://HOST[:PORT], e.g.
                       http://127.0.0.1:8000 (TLS is not supported yet)
  --json               print the server's JSON answer as it is (for scripts)
  --alias NAME         the alias promote and rollback move (default production)
  --reason TEXT        why, recorded in the model's history (promote, rollback)
  --timeout-secs N     give up when the server has not answered after N s (default 30)

promote and rollback are accepted only from the server's own machine unless it
runs with --allow-remote-admin true.
Exit codes: 0 done; 1 the server refused (its message is printed) or could not be
reached; 2 the command line is wrong.
)";

namespace {

// One year: far beyond any real wait, and far from overflowing chrono.
constexpr int64_t kMaxTimeoutSecs = 365 * 24 * 3600;

const char* VerbName(ModelsVerb verb) {
  switch (verb) {
    case ModelsVerb::kList: return "list";
    case ModelsVerb::kShow: return "show";
    case ModelsVerb::kHistory: return "history";
    case ModelsVerb::kPromote: return "promote";
    case ModelsVerb::kRollback: return "rollback";
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

// The JSON body of promote and rollback (docs/registry.md).
std::string MutationBody(const ModelsCommand& command) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  writer.StartObject();
  if (command.verb == ModelsVerb::kPromote) {
    writer.Key("version");
    writer.Int64(command.version);
  }
  writer.Key("alias");
  writer.String(command.alias.data(), static_cast<rapidjson::SizeType>(command.alias.size()));
  if (command.reason.has_value()) {
    writer.Key("reason");
    writer.String(command.reason->data(), static_cast<rapidjson::SizeType>(command.reason->size()));
  }
  writer.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace

StatusOr<ModelsCommand> ParseModelsCommand(const std::vector<std::string_view>& args) {
  const auto usage = [](std::string message) {
    return Status::InvalidArgument(std::move(message));
  };
  if (args.empty()) {
    return usage("models needs a command: list, show, history, promote or rollback");
  }
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
  } else {
    return usage("unknown models command '" + PrintableExcerpt(verb) +
                 "': expected list, show, history, promote or rollback");
  }
  const std::string name = std::string("models ") + VerbName(command.verb);
  const bool moves_alias =
      command.verb == ModelsVerb::kPromote || command.verb == ModelsVerb::kRollback;

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
    if (flag != "--url" && flag != "--json" && flag != "--alias" && flag != "--reason" &&
        flag != "--timeout-secs") {
      return usage("unknown flag " + flag_text + " for " + name);
    }
    for (std::string_view earlier : seen) {
      if (earlier == flag) return usage(flag_text + " is given twice");
    }
    seen.push_back(flag);
    if (flag == "--json") {
      if (value.has_value()) return usage("--json takes no value");
      command.json = true;
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
    } else if (flag == "--timeout-secs") {
      if (!ParsePositive(*value, &command.timeout_secs) ||
          command.timeout_secs > kMaxTimeoutSecs) {
        return usage(bad + ": expected a number of seconds from 1 to " +
                     std::to_string(kMaxTimeoutSecs));
      }
    } else {
      if (!moves_alias) {
        return usage(flag_text + " applies to promote and rollback, not to " + VerbName(command.verb));
      }
      if (!IsValidUtf8(*value)) return usage(bad + ": it is not valid UTF-8");
      if (flag == "--alias") {
        if (value->empty()) return usage(bad + ": an alias needs a name");
        command.alias = std::string(*value);
      } else {
        command.reason = std::string(*value);
      }
    }
  }

  if (command.url.empty()) return usage(name + " needs --url URL, e.g. --url http://127.0.0.1:8000");
  const size_t wanted = command.verb == ModelsVerb::kList      ? 0
                        : command.verb == ModelsVerb::kPromote ? 2
                                                               : 1;
  if (positional.size() != wanted) {
    static constexpr const char* kWanted[] = {"no model name", "NAME", "NAME and VERSION"};
    return usage(name + " takes " + kWanted[wanted] + ", got " + std::to_string(positional.size()) +
                 " argument" + (positional.size() == 1 ? "" : "s"));
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
  HttpClient client(std::move(url).value(), std::chrono::seconds(command.timeout_secs));

  std::string target = "/v2/registry/models";
  if (!command.model.empty()) target += "/" + EncodePathSegment(command.model);
  StatusOr<HttpResponse> response = Status::Internal("unreachable");
  switch (command.verb) {
    case ModelsVerb::kList:
    case ModelsVerb::kShow:
      response = client.Get(target);
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
  }
  if (!response.ok()) return fail(response.status().message());
  if (response->status < 200 || response->status > 299) {
    return fail(ErrorMessage(response->status, response->body));
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
  }
  if (!text.ok()) return fail(text.status().message());
  std::fputs(text->c_str(), out);
  return kExitOk;
}

}  // namespace berth::cli
