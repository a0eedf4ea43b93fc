#include "cli/keys_command.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "net/http_client.h"
#include "cli/models_command.h"
#include "core/model_name.h"
#include "registry/registry_store.h"
#include "server/auth/authorizer.h"

namespace berth::cli {

using net::AddApiKey;
using net::EncodePathSegment;
using net::HttpClient;
using net::HttpResponse;
using net::ParseServerUrl;
using net::ServerUrl;

const char kKeysUsage[] = R"(Usage:
  berth keys create (--model-repository DIR | --registry URL | --url URL) --name NAME
                    --scope SCOPE [--scope SCOPE ...] [--rate N/s] [--expires DAYS]
  berth keys list   (--model-repository DIR | --registry URL | --url URL)
  berth keys revoke (--model-repository DIR | --registry URL | --url URL) NAME

  --model-repository DIR  the repository's own store (DIR/.berth/registry.db)
  --registry URL          a store: sqlite:PATH or postgresql://USER@HOST:PORT/DB
  --url URL               a running server (its /v2/keys routes; scope admin)
  --api-key KEY           the admin key --url sends (default $BERTH_API_KEY)
  --ca-file FILE          --url https://: the server's certificate must chain to this PEM
                          file (default $BERTH_CA_FILE, else the system's CAs)
  --cert FILE             --url https://: a client certificate (PEM) for a server that
                          wants mutual TLS (default $BERTH_CERT_FILE)
  --key FILE              --cert's private key (PEM; default $BERTH_KEY_FILE, else in
                          --cert's file)
  --scope SCOPE           infer (every model), infer:MODEL, read or admin
  --rate N/s              at most N requests a second (a burst of N); default no limit
  --expires DAYS          the key stops working DAYS days from now; default never
  --timeout-secs N        --url: give up after N s (default 30)

create prints the key alone on its last line; it is shown only this once:
  key=$(berth keys create --url http://127.0.0.1:8000 --name ci --scope infer | tail -1)
A running server sees keys made in its store within a second.
)";

namespace {

struct KeysCommand {
  std::string verb;
  std::string model_repository;
  std::string registry;
  std::string url;
  std::string api_key;
  std::string ca_file;
  std::string cert_file;  // --cert, --key: a client certificate for mutual TLS
  std::string key_file;
  int64_t timeout_secs = 30;
  auth::KeySpec spec;  // create: name, scopes, rate, expires
  std::string name;    // revoke
};

StatusOr<KeysCommand> Parse(const std::vector<std::string_view>& args) {
  KeysCommand c;
  if (args.empty()) return Status::InvalidArgument("keys needs a command: create, list or revoke");
  c.verb = std::string(args[0]);
  if (c.verb != "create" && c.verb != "list" && c.verb != "revoke") {
    return Status::InvalidArgument("unknown keys command '" + PrintableExcerpt(args[0]) +
                                   "': expected create, list or revoke");
  }
  std::vector<std::string_view> positional;
  int sources = 0;
  bool rate_given = false, expires_given = false, name_given = false;
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
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Status::InvalidArgument("flag " + PrintableExcerpt(flag) + " needs a value");
    }
    const std::string bad =
        "invalid value '" + PrintableExcerpt(*value) + "' for " + PrintableExcerpt(flag);
    const bool create_only =
        flag == "--name" || flag == "--scope" || flag == "--rate" || flag == "--expires";
    if (create_only && c.verb != "create") {
      return Status::InvalidArgument(PrintableExcerpt(flag) + " applies to create, not to " +
                                     c.verb);
    }
    if (flag == "--model-repository") {
      c.model_repository = std::string(*value);
      ++sources;
    } else if (flag == "--registry") {
      c.registry = std::string(*value);
      ++sources;
    } else if (flag == "--url") {
      c.url = std::string(*value);
      ++sources;
    } else if (flag == "--ca-file") {
      if (value->empty()) return Status::InvalidArgument(bad);
      c.ca_file = std::string(*value);
    } else if (flag == "--cert" || flag == "--key") {
      if (value->empty()) return Status::InvalidArgument(bad);
      (flag == "--cert" ? c.cert_file : c.key_file) = std::string(*value);
    } else if (flag == "--api-key") {
      if (value->empty()) return Status::InvalidArgument("invalid value for --api-key");
      c.api_key = std::string(*value);
    } else if (flag == "--timeout-secs") {
      auto [end, ec] =
          std::from_chars(value->data(), value->data() + value->size(), c.timeout_secs);
      if (ec != std::errc() || end != value->data() + value->size() || c.timeout_secs < 1 ||
          c.timeout_secs > 86400) {
        return Status::InvalidArgument(bad);
      }
    } else if (flag == "--name") {
      if (name_given) return Status::InvalidArgument("--name is given twice");
      name_given = true;
      c.spec.name = std::string(*value);
    } else if (flag == "--scope") {
      RETURN_IF_ERROR(auth::ParseGrant(*value).status());
      c.spec.scopes.emplace_back(*value);
    } else if (flag == "--rate") {
      if (rate_given) return Status::InvalidArgument("--rate is given twice");
      rate_given = true;
      ASSIGN_OR_RETURN(c.spec.rate, auth::ParseRate(*value));
    } else if (flag == "--expires") {
      if (expires_given) return Status::InvalidArgument("--expires is given twice");
      expires_given = true;
      auto [end, ec] =
          std::from_chars(value->data(), value->data() + value->size(), c.spec.expires_days);
      if (ec != std::errc() || end != value->data() + value->size() || c.spec.expires_days < 1 ||
          c.spec.expires_days > 36500) {
        return Status::InvalidArgument(bad + ": expected a number of days from 1 to 36500");
      }
    } else {
      return Status::InvalidArgument("unknown flag " + PrintableExcerpt(flag) + " for keys " +
                                     c.verb);
    }
  }
  if (sources != 1) {
    return Status::InvalidArgument(
        "give exactly one of --model-repository DIR, --registry URL and --url URL");
  }
  if (!c.api_key.empty() && c.url.empty()) {
    return Status::InvalidArgument("--api-key goes with --url");
  }
  if (!c.ca_file.empty() && c.url.empty()) {
    return Status::InvalidArgument("--ca-file goes with --url");
  }
  if ((!c.cert_file.empty() || !c.key_file.empty()) && c.url.empty()) {
    return Status::InvalidArgument("--cert and --key go with --url");
  }
  if (!c.key_file.empty() && c.cert_file.empty()) {
    return Status::InvalidArgument("--key goes with --cert (the client certificate)");
  }
  if (c.verb == "create") {
    if (!positional.empty()) return Status::InvalidArgument("create takes no positional argument");
    if (c.spec.name.empty()) return Status::InvalidArgument("create needs --name NAME");
    if (c.spec.scopes.empty()) return Status::InvalidArgument("create needs --scope SCOPE");
  } else if (c.verb == "revoke") {
    if (positional.size() != 1) return Status::InvalidArgument("revoke needs the key's NAME");
    c.name = std::string(positional[0]);
  } else if (!positional.empty()) {
    return Status::InvalidArgument("list takes no positional argument");
  }
  return c;
}

void PrintKeys(const std::vector<ApiKeyRecord>& keys, std::FILE* out) {
  std::fprintf(out, "%-24s %-30s %-8s %-21s %-21s %s\n", "NAME", "SCOPES", "RATE", "CREATED",
               "EXPIRES", "STATUS");
  const std::string now = NowRfc3339();
  for (const ApiKeyRecord& k : keys) {
    const std::string rate = k.rate > 0 ? std::to_string(static_cast<int64_t>(k.rate)) + "/s" : "-";
    const char* status = !k.revoked_at.empty()                          ? "revoked"
                         : !k.expires_at.empty() && k.expires_at <= now ? "expired"
                                                                        : "active";
    std::fprintf(out, "%-24s %-30s %-8s %-21s %-21s %s\n", k.name.c_str(),
                 JoinScopes(k.scopes).c_str(), rate.c_str(), k.created_at.c_str(),
                 k.expires_at.empty() ? "never" : k.expires_at.c_str(), status);
  }
}

std::string CreateBody(const auth::KeySpec& spec) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("name");
  w.String(spec.name.c_str(), static_cast<rapidjson::SizeType>(spec.name.size()));
  w.Key("scopes");
  w.StartArray();
  for (const std::string& s : spec.scopes) {
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  }
  w.EndArray();
  if (spec.rate > 0) {
    w.Key("rate");
    w.Double(spec.rate);
  }
  if (spec.expires_days > 0) {
    w.Key("expires_days");
    w.Int64(spec.expires_days);
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

// The server's answer, or its {"error": ...} as a Status.
StatusOr<rapidjson::Document> Answer(const StatusOr<HttpResponse>& response) {
  if (!response.ok()) return response.status();
  rapidjson::Document doc;
  doc.Parse(response->body.data(), response->body.size());
  const bool error = response->status < 200 || response->status > 299;
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::Unavailable("the server answered " + std::to_string(response->status) +
                               " without a JSON object");
  }
  if (error) {
    auto e = doc.FindMember("error");
    return Status::Unavailable("the server refused (" + std::to_string(response->status) + "): " +
                               (e != doc.MemberEnd() && e->value.IsString()
                                    ? std::string(e->value.GetString())
                                    : std::string("no reason given")));
  }
  return doc;
}

std::string StringMember(const rapidjson::Value& v, const char* name) {
  auto it = v.FindMember(name);
  return it != v.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString()) : "";
}

int RunRemote(const KeysCommand& c, std::FILE* out, std::FILE* err) {
  const auto fail = [&](const std::string& message) {
    std::fprintf(err, "berth: %s\n", message.c_str());
    return kExitFailure;
  };
  StatusOr<ServerUrl> url = ParseServerUrl(c.url);
  if (!url.ok()) return fail(url.status().message());
  StatusOr<net::TlsFiles> tls = ClientTlsFiles(*url, c.ca_file, c.cert_file, c.key_file);
  if (!tls.ok()) return fail(tls.status().message());
  HttpClient client(std::move(url).value(), std::chrono::seconds(c.timeout_secs), *tls);
  if (!client.tls_status().ok()) return fail(client.tls_status().message());
  if (Status key = AddApiKey(c.api_key, &client); !key.ok()) return fail(key.message());
  if (c.verb == "create") {
    auto doc = Answer(client.Post("/v2/keys", CreateBody(c.spec)));
    if (!doc.ok()) return fail(doc.status().message());
    const std::string key = StringMember(*doc, "key");
    if (key.empty()) return fail("the server's answer holds no key");
    std::fprintf(out, "created API key '%s'; it is shown only now:\n%s\n", c.spec.name.c_str(),
                 key.c_str());
    return kExitOk;
  }
  if (c.verb == "revoke") {
    auto doc = Answer(client.Delete("/v2/keys/" + EncodePathSegment(c.name), ""));
    if (!doc.ok()) return fail(doc.status().message());
    std::fprintf(out, "revoked API key '%s'\n", c.name.c_str());
    return kExitOk;
  }
  auto doc = Answer(client.Get("/v2/keys"));
  if (!doc.ok()) return fail(doc.status().message());
  std::vector<ApiKeyRecord> keys;
  auto list = doc->FindMember("keys");
  if (list == doc->MemberEnd() || !list->value.IsArray()) return fail("no 'keys' in the answer");
  for (const auto& k : list->value.GetArray()) {
    if (!k.IsObject()) continue;
    ApiKeyRecord r;
    r.name = StringMember(k, "name");
    r.id = StringMember(k, "id");
    if (auto s = k.FindMember("scopes"); s != k.MemberEnd() && s->value.IsArray()) {
      for (const auto& v : s->value.GetArray()) {
        if (v.IsString()) r.scopes.emplace_back(v.GetString());
      }
    }
    if (auto rate = k.FindMember("rate"); rate != k.MemberEnd() && rate->value.IsNumber()) {
      r.rate = rate->value.GetDouble();
    }
    r.created_at = StringMember(k, "created_at");
    r.expires_at = StringMember(k, "expires_at");
    r.revoked_at = StringMember(k, "revoked_at");
    keys.push_back(std::move(r));
  }
  PrintKeys(keys, out);
  return kExitOk;
}

int RunLocal(const KeysCommand& c, std::FILE* out, std::FILE* err) {
  const auto fail = [&](const std::string& message) {
    std::fprintf(err, "berth: %s\n", message.c_str());
    return kExitFailure;
  };
  if (c.registry == "none") return fail("--registry none holds no keys");
  auto store = OpenRegistryStore(c.registry, c.model_repository);
  if (!store.ok()) return fail(store.status().message());
  if (c.verb == "create") {
    auto key = auth::CreateKey(store->get(), c.spec);
    if (!key.ok()) return fail(key.status().message());
    std::fprintf(out, "created API key '%s'; it is shown only now:\n%s\n", c.spec.name.c_str(),
                 key->c_str());
    return kExitOk;
  }
  if (c.verb == "revoke") {
    if (Status s = auth::RevokeKey(store->get(), c.name); !s.ok()) return fail(s.message());
    std::fprintf(out, "revoked API key '%s'\n", c.name.c_str());
    return kExitOk;
  }
  auto keys = (*store)->ApiKeys();
  if (!keys.ok()) return fail(keys.status().message());
  PrintKeys(*keys, out);
  return kExitOk;
}

}  // namespace

int RunKeysCommand(const std::vector<std::string_view>& args, std::FILE* out, std::FILE* err) {
  for (std::string_view a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(kKeysUsage, out);
      return kExitOk;
    }
  }
  auto command = Parse(args);
  if (!command.ok()) {
    std::fprintf(err, "berth: %s\n%s", command.status().message().c_str(), kKeysUsage);
    return kExitUsage;
  }
  return command->url.empty() ? RunLocal(*command, out, err) : RunRemote(*command, out, err);
}

}  // namespace berth::cli
