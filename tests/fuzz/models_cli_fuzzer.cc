// Fuzz target: what `berth models` parses (src/cli). The first byte picks:
//   0: ParseServerUrl: an accepted URL has a host, a port, and a prefix with
//      no trailing '/', and nothing in it that would break a request line;
//   1-4: the table formatters over a server's answer: whatever the JSON, a
//      Status or text with no control character but '\n' (nothing the
//      server sends may drive the user's terminal);
//   5: ErrorMessage over an error body: one line, printable, bounded;
//   6: ParseModelsCommand over NUL-separated arguments: what it accepts has a
//      valid model name where one is needed and a version > 0 for promote,
//      archive, restore and delete.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_client.h"
#include "cli/models_command.h"
#include "cli/models_format.h"
#include "core/model_name.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

// No byte below 0x20 (but '\n' where allowed) and no DEL.
void CheckPrintable(std::string_view text, bool newlines, const char* what) {
  for (unsigned char c : text) {
    if ((c < 0x20 && !(newlines && c == '\n')) || c == 0x7F) {
      Fail(std::string(what) + " printed a control character");
    }
  }
}

void CheckUrl(std::string_view text) {
  berth::StatusOr<berth::net::ServerUrl> url = berth::net::ParseServerUrl(text);
  if (!url.ok()) {
    CheckPrintable(url.status().message(), false, "ParseServerUrl's error");
    return;
  }
  if (url->host.empty() || url->port == 0) Fail("accepted a URL with no host or port");
  if (!url->path_prefix.empty() && url->path_prefix.back() == '/') Fail("prefix ends in '/'");
  for (std::string_view part : {std::string_view(url->host), std::string_view(url->path_prefix)}) {
    for (unsigned char c : part) {
      if (c <= ' ' || c >= 0x7F || c == '?' || c == '#') Fail("accepted a byte unfit for HTTP");
    }
  }
}

void CheckCommand(std::string_view text) {
  std::vector<std::string_view> args;
  for (size_t start = 0;;) {
    const size_t end = text.find('\0', start);
    args.push_back(text.substr(start, end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  berth::StatusOr<berth::cli::ModelsCommand> command = berth::cli::ParseModelsCommand(args);
  if (!command.ok()) {
    CheckPrintable(command.status().message(), false, "ParseModelsCommand's error");
    return;
  }
  const bool needs_model = command->verb != berth::cli::ModelsVerb::kList;
  if (needs_model && !berth::ValidateModelName(command->model).ok()) Fail("accepted a bad name");
  if (!needs_model && !command->model.empty()) Fail("list took a model name");
  using berth::cli::ModelsVerb;
  const ModelsVerb verb = command->verb;
  if ((verb == ModelsVerb::kPromote || verb == ModelsVerb::kArchive ||
       verb == ModelsVerb::kRestore || verb == ModelsVerb::kDelete) &&
      command->version <= 0) {
    Fail("accepted a version <= 0");
  }
  if (command->sticky_key.has_value() &&
      (verb != ModelsVerb::kSplit || command->sticky_key->empty())) {
    Fail("accepted an empty --sticky-key or one for another command than split");
  }
  if (command->url.empty() || command->timeout_secs <= 0 || command->alias.empty()) {
    Fail("accepted an empty --url or --alias or a timeout <= 0");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  using Formatter = berth::StatusOr<std::string> (*)(std::string_view);
  static constexpr Formatter kFormatters[] = {
      berth::cli::FormatModelList, berth::cli::FormatModelDetails, berth::cli::FormatHistory,
      berth::cli::FormatAliasMove};
  const int which = data[0] % 7;
  switch (which) {
    case 0:
      CheckUrl(text);
      return 0;
    case 5: {
      const std::string message = berth::cli::ErrorMessage(500, text);
      CheckPrintable(message, false, "ErrorMessage");
      if (message.size() > 2100) Fail("ErrorMessage is unbounded");
      return 0;
    }
    case 6:
      CheckCommand(text);
      return 0;
    default: {
      berth::StatusOr<std::string> table = kFormatters[which - 1](text);
      if (table.ok()) {
        CheckPrintable(*table, true, "a formatter");
      } else {
        CheckPrintable(table.status().message(), false, "a formatter's error");
      }
      return 0;
    }
  }
}
