#include "cli/models_format.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <limits>
#include <utility>
#include <vector>

#include "core/model_name.h"

namespace berth::cli {
namespace {

using rapidjson::Value;

constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

std::string Printable(std::string_view text, size_t max_bytes = kNoLimit) {
  return PrintableExcerpt(text, max_bytes);
}

size_t DisplayWidth(std::string_view s) {
  size_t width = 0;
  for (unsigned char c : s) width += (c & 0xC0) != 0x80;  // skip UTF-8 continuation bytes
  return width;
}

const Value* Member(const Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// Deeper arrays and objects show as "[...]" / "{...}": a cell is for
// reading, and the recursion below stays bounded whatever the answer holds.
constexpr int kMaxCellDepth = 8;

// Any JSON value as one table cell: null or missing as "-", arrays as
// "a,b", objects as "k=v,k=v"; nested ones inside [] and {} so that a
// weighted split reads "production={3=90,4=10}".
std::string Cell(const Value* v, int depth = 0) {
  const bool nested = depth > 0;
  if (v == nullptr || v->IsNull()) return "-";
  if (v->IsString()) return Printable({v->GetString(), v->GetStringLength()});
  if (v->IsBool()) return v->GetBool() ? "true" : "false";
  if (v->IsInt64()) return std::to_string(v->GetInt64());
  if (v->IsUint64()) return std::to_string(v->GetUint64());
  if (v->IsNumber()) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", v->GetDouble());
    return text;
  }
  if (depth >= kMaxCellDepth) return v->IsArray() ? "[...]" : "{...}";
  std::string out;
  if (v->IsArray()) {
    for (const Value& element : v->GetArray()) {
      if (!out.empty()) out += ",";
      out += Cell(&element, depth + 1);
    }
    if (nested) return "[" + out + "]";
  } else {
    for (const auto& member : v->GetObject()) {
      if (!out.empty()) out += ",";
      out += Printable({member.name.GetString(), member.name.GetStringLength()}) + "=" +
             Cell(&member.value, depth + 1);
    }
    if (nested) return "{" + out + "}";
  }
  return out.empty() ? "-" : out;
}

std::string Cell(const Value& object, const char* name) { return Cell(Member(object, name)); }

// Iterative parsing: a deeply nested answer cannot exhaust the stack.
void ParseJson(std::string_view json, rapidjson::Document* doc) {
  doc->Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
}

StatusOr<rapidjson::Document> ParseAnswer(std::string_view json) {
  rapidjson::Document doc;
  ParseJson(json, &doc);
  if (doc.HasParseError()) {
    return Status::Internal(std::string("the server's answer is not valid JSON: ") +
                            rapidjson::GetParseError_En(doc.GetParseError()) + " (offset " +
                            std::to_string(doc.GetErrorOffset()) + ")");
  }
  if (!doc.IsObject()) return Status::Internal("the server's answer is not a JSON object");
  return doc;
}

StatusOr<const Value*> ArrayMember(const Value& doc, const char* name) {
  const Value* array = Member(doc, name);
  if (array == nullptr || !array->IsArray()) {
    return Status::Internal(std::string("the server's answer has no \"") + name + "\" list");
  }
  return array;
}

// "sha256:" and the first 12 hex digits, as image digests are usually shown;
// --json has the whole digest.
std::string ShortDigest(const Value* digest) {
  constexpr std::string_view kPrefix = "sha256:";
  constexpr size_t kShown = 12;
  if (digest != nullptr && digest->IsString()) {
    std::string_view text(digest->GetString(), digest->GetStringLength());
    if (text.substr(0, kPrefix.size()) == kPrefix && text.size() > kPrefix.size() + kShown) {
      return Printable(text.substr(0, kPrefix.size() + kShown));
    }
  }
  return Cell(digest);
}

std::string PreviousCell(const Value* previous) {
  return previous == nullptr || previous->IsNull() ? std::string("none") : Cell(previous);
}

// "version 4, 20% of the traffic" for the {"version", "percent"} object the
// server writes; anything else as its cell.
std::string ShadowCell(const Value& shadow) {
  const Value* version = Member(shadow, "version");
  const Value* percent = Member(shadow, "percent");
  if (version != nullptr && version->IsInt64() && percent != nullptr && percent->IsInt()) {
    return "version " + std::to_string(version->GetInt64()) + ", " +
           std::to_string(percent->GetInt()) + "% of the traffic";
  }
  return Cell(&shadow);
}

// The shadow's comparison with the live answers, as the server counts it:
// "50 requests: 41 agree (82.0%), 9 differ, 0 failed; mean |difference|
// 0.0123; mean latency 0.41 ms". Empty for a server that sends none.
std::string ShadowComparisonCell(const Value& shadow) {
  const Value* requests = Member(shadow, "requests");
  if (requests == nullptr || !requests->IsUint64()) return "";
  const auto count = [&](const char* name) {
    const Value* v = Member(shadow, name);
    return v != nullptr && v->IsUint64() ? std::to_string(v->GetUint64()) : std::string("?");
  };
  const auto number = [&](const char* name, double scale, const char* format) {
    const Value* v = Member(shadow, name);
    if (v == nullptr || !v->IsNumber()) return std::string("n/a");
    char buf[64];
    std::snprintf(buf, sizeof(buf), format, v->GetDouble() * scale);
    return std::string(buf);
  };
  return count("requests") + " requests: " + count("agree") + " agree (" +
         number("agreement_rate", 100, "%.1f%%") + "), " + count("differ") + " differ, " +
         count("failed") + " failed; mean |difference| " +
         number("mean_abs_difference", 1, "%.6g") + "; mean latency " +
         number("mean_latency_seconds", 1000, "%.3g ms");
}

// What import and evaluation recorded about a version's quality, one line
// each ("" when nothing was): the registered metrics, the parity check
// against the original framework, the pickle scan, the latest evaluation.
std::vector<std::string> QualityLines(const Value& version) {
  std::vector<std::string> lines;
  const Value* metadata = Member(version, "metadata");
  const bool has_metadata = metadata != nullptr && metadata->IsObject();
  if (const Value* metrics = has_metadata ? Member(*metadata, "metrics") : nullptr;
      metrics != nullptr && metrics->IsObject() && !metrics->ObjectEmpty()) {
    lines.push_back("metrics     " + Cell(metrics));
  }
  if (const Value* parity = has_metadata ? Member(*metadata, "parity") : nullptr;
      parity != nullptr && parity->IsObject()) {
    const Value* passed = Member(*parity, "passed");
    const bool ok = passed != nullptr && passed->IsBool() && passed->GetBool();
    lines.push_back(std::string("parity      ") + (ok ? "passed" : "FAILED") + ": " +
                    Cell(*parity, "rows") + " rows, labels agree " +
                    Cell(*parity, "label_agreement") + ", max |diff| " +
                    Cell(*parity, "max_abs_diff") + " (tolerance " + Cell(*parity, "tolerance") +
                    ")");
  }
  if (const Value* scan = has_metadata ? Member(*metadata, "scan") : nullptr;
      scan != nullptr && scan->IsObject()) {
    const Value* globals = Member(*scan, "globals");
    const Value* findings = Member(*scan, "findings");
    const auto count = [](const Value* a) {
      return a != nullptr && a->IsArray() ? std::to_string(a->Size()) : std::string("-");
    };
    lines.push_back("scan        " + Cell(*scan, "scanner") + ": " + count(globals) +
                    " globals, " + count(findings) + " findings, trusted " +
                    Cell(*scan, "trusted"));
  }
  if (const Value* evaluations = Member(version, "evaluations");
      evaluations != nullptr && evaluations->IsArray() && !evaluations->Empty()) {
    const Value& latest = (*evaluations)[evaluations->Size() - 1];
    const Value* evaluation = Member(latest, "evaluation");
    std::string line = "evaluated   " + Cell(latest, "at") + " by " + Cell(latest, "by");
    if (evaluation != nullptr && evaluation->IsObject()) {
      line += ": " + Cell(*evaluation, "metrics") + " on " + Cell(*evaluation, "rows") + " rows";
    }
    if (evaluations->Size() > 1) {
      line += " (latest of " + std::to_string(evaluations->Size()) + ")";
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string SizeCell(const Value* size) {
  if (size != nullptr && size->IsUint64()) return HumanBytes(size->GetUint64());
  return Cell(size);
}

}  // namespace

TextTable::TextTable(std::vector<std::string> header) : header_(std::move(header)) {}

void TextTable::AddRow(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

std::string TextTable::Render() const {
  std::vector<size_t> widths(header_.size());
  const auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    }
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  std::string out;
  const auto append = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - DisplayWidth(row[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  append(header_);
  for (const auto& row : rows_) append(row);
  return out;
}

StatusOr<std::string> FilterModelList(std::string_view json, std::string_view name) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseAnswer(json));
  ASSIGN_OR_RETURN(const Value* models, ArrayMember(doc, "models"));
  for (const Value& model : models->GetArray()) {
    const Value* listed = Member(model, "name");
    if (listed == nullptr || !listed->IsString() ||
        std::string_view(listed->GetString(), listed->GetStringLength()) != name) {
      continue;
    }
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("models");
    w.StartArray();
    model.Accept(w);
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  }
  return Status::NotFound("model '" + Printable(name) + "' is not in the registry");
}

StatusOr<std::vector<std::string>> ListedModelNames(std::string_view json) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseAnswer(json));
  ASSIGN_OR_RETURN(const Value* models, ArrayMember(doc, "models"));
  std::vector<std::string> out;
  for (const Value& model : models->GetArray()) {
    const Value* name = Member(model, "name");
    if (name == nullptr || !name->IsString()) {
      return Status::Internal("the server's model list has an entry without a name");
    }
    out.emplace_back(name->GetString(), name->GetStringLength());
  }
  return out;
}

StatusOr<std::string> FormatModelList(std::string_view json) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseAnswer(json));
  ASSIGN_OR_RETURN(const Value* models, ArrayMember(doc, "models"));
  if (models->Empty()) return std::string("no models\n");
  bool any_retired = false;
  for (const Value& model : models->GetArray()) {
    for (const char* name : {"archived", "deleted"}) {
      const Value* list = Member(model, name);
      any_retired |= list != nullptr && list->IsArray() && !list->Empty();
    }
  }
  std::vector<std::string> header = {"MODEL", "ALIASES", "VERSIONS"};
  if (any_retired) header.insert(header.end(), {"ARCHIVED", "DELETED"});
  TextTable table(std::move(header));
  for (const Value& model : models->GetArray()) {
    std::vector<std::string> row = {Cell(model, "name"), Cell(model, "aliases"),
                                    Cell(model, "versions")};
    if (any_retired) row.insert(row.end(), {Cell(model, "archived"), Cell(model, "deleted")});
    table.AddRow(std::move(row));
  }
  return table.Render();
}

StatusOr<std::string> FormatModelDetails(std::string_view json) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseAnswer(json));
  ASSIGN_OR_RETURN(const Value* versions, ArrayMember(doc, "versions"));
  std::string out = "model:            " + Cell(doc, "name") + "\n" +
                    "default version:  " + Cell(doc, "default_version") + "\n" +
                    "aliases:          " + Cell(doc, "aliases") + "\n";
  if (const Value* splits = Member(doc, "splits");
      splits != nullptr && splits->IsObject() && !splits->ObjectEmpty()) {
    out += "splits:           " + Cell(splits) + "\n";
  }
  if (const Value* keys = Member(doc, "sticky_keys");
      keys != nullptr && keys->IsObject() && !keys->ObjectEmpty()) {
    out += "sticky keys:      " + Cell(keys) + "\n";
  }
  if (const Value* shadow = Member(doc, "shadow"); shadow != nullptr && !shadow->IsNull()) {
    out += "shadow:           " + ShadowCell(*shadow) + "\n";
    if (const std::string compared = ShadowComparisonCell(*shadow); !compared.empty()) {
      out += "shadow compared:  " + compared + "\n";
    }
  }
  out += "\n";
  if (versions->Empty()) return out + "no versions\n";
  bool any_reason = false;
  bool any_memory = false;
  for (const Value& version : versions->GetArray()) {
    const Value* reason = Member(version, "reason");
    any_reason |= reason != nullptr && !(reason->IsString() && reason->GetStringLength() == 0) &&
                  !reason->IsNull();
    any_memory |= Member(version, "memory_bytes") != nullptr;
  }
  std::vector<std::string> header = {"VERSION", "STATE",   "ALIASES", "FORMAT",
                                     "SIZE",    "CREATED", "DIGEST"};
  // What loaded versions hold against --memory-budget, after their size.
  if (any_memory) header.insert(header.begin() + 5, "MEMORY");
  // The reason goes last, and only when some version has one: it is the
  // longest cell and usually empty.
  if (any_reason) header.push_back("REASON");
  TextTable table(std::move(header));
  for (const Value& version : versions->GetArray()) {
    std::vector<std::string> row = {Cell(version, "version"),       Cell(version, "state"),
                                    Cell(version, "aliases"),       Cell(version, "format"),
                                    SizeCell(Member(version, "size")), Cell(version, "created_at"),
                                    ShortDigest(Member(version, "digest"))};
    if (any_memory) row.insert(row.begin() + 5, SizeCell(Member(version, "memory_bytes")));
    if (any_reason) row.push_back(Cell(version, "reason"));
    table.AddRow(std::move(row));
  }
  out += table.Render();
  for (const Value& version : versions->GetArray()) {
    const std::vector<std::string> lines = QualityLines(version);
    if (lines.empty()) continue;
    out += "\nversion " + Cell(version, "version") + ":\n";
    for (const std::string& line : lines) out += "  " + line + "\n";
  }
  // A version that is a directory (the Python runtime's): its files, and
  // the digest of the set.
  for (const Value& version : versions->GetArray()) {
    const Value* files = Member(version, "files");
    if (files == nullptr || !files->IsArray() || files->Empty()) continue;
    out += "\nversion " + Cell(version, "version") + ": " + std::to_string(files->Size()) +
           " files, " + ShortDigest(Member(version, "files_digest")) + " (the set)\n";
    TextTable listed({"FILE", "SIZE", "DIGEST"});
    for (const Value& file : files->GetArray()) {
      listed.AddRow({Cell(file, "name"), SizeCell(Member(file, "size")),
                     ShortDigest(Member(file, "digest"))});
    }
    out += listed.Render();
  }
  return out;
}

StatusOr<std::string> FormatHistory(std::string_view json) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseAnswer(json));
  ASSIGN_OR_RETURN(const Value* records, ArrayMember(doc, "history"));
  if (records->Empty()) return std::string("no history\n");
  TextTable table({"ID", "AT", "ACTOR", "ACTION", "ALIAS", "FROM", "TO", "REASON"});
  for (const Value& record : records->GetArray()) {
    table.AddRow({Cell(record, "id"), Cell(record, "at"), Cell(record, "actor"),
                  Cell(record, "action"), Cell(record, "alias"), Cell(record, "from"),
                  Cell(record, "to"), Cell(record, "reason")});
  }
  return table.Render();
}

StatusOr<std::string> FormatAliasMove(std::string_view json) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseAnswer(json));
  const Value* previous = Member(doc, "previous");
  return Cell(doc, "model") + ": " + Cell(doc, "alias") + " now points at version " +
         Cell(doc, "version") + " (previously " +
         (previous == nullptr || previous->IsNull() ? std::string("none") : Cell(previous)) +
         ")\n";
}

StatusOr<std::string> FormatSplit(std::string_view json, std::string_view weights) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseAnswer(json));
  const Value* previous = Member(doc, "previous");
  return Cell(doc, "model") + ": " + Cell(doc, "alias") + " now splits traffic " +
         Printable(weights) + " (previously " +
         (previous == nullptr || previous->IsNull() ? std::string("none") : Cell(previous)) +
         ")\n";
}

StatusOr<std::string> FormatShadow(std::string_view json) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseAnswer(json));
  const Value* percent = Member(doc, "percent");
  const std::string previous = " (previously " + PreviousCell(Member(doc, "previous")) + ")\n";
  if (percent != nullptr && percent->IsInt() && percent->GetInt() == 0) {
    return Cell(doc, "model") + ": shadow off" + previous;
  }
  return Cell(doc, "model") + ": version " + Cell(doc, "version") + " shadows " +
         Cell(percent) + "% of the traffic" + previous;
}

StatusOr<std::string> FormatPush(std::string_view json) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseAnswer(json));
  const Value* version = Member(doc, "version");
  if (version == nullptr || !version->IsInt64() || version->GetInt64() <= 0) {
    return Status::Internal("the server's answer has no version number: " + Printable(json, 200));
  }
  const std::string number = std::to_string(version->GetInt64());
  return Cell(doc, "model") + ": pushed as version " + number + "\n" + number + "\n";
}

StatusOr<std::string> FormatVersionStatus(std::string_view json, std::string_view done) {
  ASSIGN_OR_RETURN(rapidjson::Document doc, ParseAnswer(json));
  return Cell(doc, "model") + ": version " + Cell(doc, "version") + " " + Printable(done) + " (" +
         Cell(doc, "state") + ")\n";
}

std::string ErrorMessage(int http_status, std::string_view body) {
  constexpr size_t kMaxMessageBytes = 2000;
  const std::string status = "HTTP " + std::to_string(http_status);
  rapidjson::Document doc;
  ParseJson(body, &doc);
  if (!doc.HasParseError()) {
    const Value* error = Member(doc, "error");
    if (error != nullptr && error->IsString()) {
      return Printable({error->GetString(), error->GetStringLength()}, kMaxMessageBytes) + " (" +
             status + ")";
    }
  }
  if (body.empty()) return status + " with an empty body";
  return status + ": " + Printable(body, 200);
}

}  // namespace berth::cli
