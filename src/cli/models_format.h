// The readable forms of the registry admin API's answers (docs/registry.md),
// as `berth models` prints them without --json. Pure functions of the JSON
// text, so they are tested without a server.
//
// The server's text is untrusted: control characters and invalid UTF-8 in
// any field are shown as '?', so an answer cannot move the cursor or forge
// lines on the user's terminal. Missing or null fields show as "-", and a
// field of an unexpected JSON type is shown as its JSON-ish text rather than
// failing, so a newer server's answer still prints.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/byte_size.h"
#include "core/status.h"

namespace berth::cli {

// A plain-text table: columns left-aligned to their widest cell (counted in
// UTF-8 code points), separated by two spaces, no trailing spaces.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header);

  // Cells beyond the header's width are dropped; missing ones are empty.
  void AddRow(std::vector<std::string> row);
  size_t rows() const { return rows_.size(); }
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// GET /v2/registry/models: one row per model (name, aliases, versions; its
// archived and deleted versions in two more columns when any model has any).
StatusOr<std::string> FormatModelList(std::string_view json);

// GET /v2/registry/models, cut to the model `name` (still {"models": [...]},
// for list NAME); NotFound if the list does not have it.
StatusOr<std::string> FilterModelList(std::string_view json, std::string_view name);
// The model names of a GET /v2/registry/models answer, in its order.
StatusOr<std::vector<std::string>> ListedModelNames(std::string_view json);

// GET /v2/registry/models/{model}: the model's aliases and default version,
// its splits and shadow when it has any, then one row per version.
StatusOr<std::string> FormatModelDetails(std::string_view json);

// GET /v2/registry/models/{model}/history: one row per audit record, oldest
// first.
StatusOr<std::string> FormatHistory(std::string_view json);

// The answer of POST .../promote or .../rollback: one line naming the model,
// the alias, the version it now points at and the one before.
StatusOr<std::string> FormatAliasMove(std::string_view json);

// The answer of POST .../split: one line naming the model, the alias, the
// split (`weights`, e.g. "3=90 4=10", as the command gave it) and the
// version the alias pointed at before.
StatusOr<std::string> FormatSplit(std::string_view json, std::string_view weights);

// The answer of POST .../shadow: "iris: version 4 shadows 20% of the traffic
// (previously 3)" or, when its "percent" is 0, "iris: shadow off (previously
// 4)"; "previous" is the version shadowed before, "none" when null.
StatusOr<std::string> FormatShadow(std::string_view json);

// The answer of POST .../versions: a line naming the model and the new
// version, then the version number alone on the last line, for scripts
// (`v=$(berth models push ... | tail -1)`). Internal when the answer has no
// positive whole "version".
StatusOr<std::string> FormatPush(std::string_view json);

// The answer of archive, restore or delete ({"model", "version", "state"}):
// "iris: version 3 archived (ARCHIVED)", `done` being the past participle.
StatusOr<std::string> FormatVersionStatus(std::string_view json, std::string_view done);

// The "error" member of an error answer's JSON body, made printable; when the
// body has none, a short printable excerpt of the body with the HTTP status.
std::string ErrorMessage(int http_status, std::string_view body);

}  // namespace berth::cli
