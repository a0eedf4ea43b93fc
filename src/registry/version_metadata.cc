#include "registry/version_metadata.h"

#include <cmath>
#include <functional>
#include <initializer_list>
#include <limits>
#include <utility>
#include <vector>
#include <algorithm>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/json_document.h"

namespace berth {
namespace {

using Value = rapidjson::Value;
// Checks one field's value; `path` names it in errors ("metadata.dataset").
using FieldCheck = std::function<Status(const Value&, const std::string& path)>;

constexpr size_t kMaxText = 4096;

Status Invalid(const std::string& path, std::string_view what) {
  return Status::InvalidArgument(path + " must be " + std::string(what));
}

Status CheckText(const Value& v, const std::string& path) {
  if (!v.IsString() || v.GetStringLength() > kMaxText) {
    return Invalid(path, "a string of at most 4096 bytes");
  }
  return Status::Ok();
}

Status CheckBool(const Value& v, const std::string& path) {
  return v.IsBool() ? Status::Ok() : Invalid(path, "true or false");
}

Status CheckCount(const Value& v, const std::string& path) {
  return v.IsInt64() && v.GetInt64() >= 0 ? Status::Ok() : Invalid(path, "an integer >= 0");
}

// A finite number within [lo, hi].
FieldCheck Number(double lo, double hi, std::string_view range) {
  return [lo, hi, range = std::string(range)](const Value& v, const std::string& path) {
    if (!v.IsNumber() || !std::isfinite(v.GetDouble()) || v.GetDouble() < lo ||
        v.GetDouble() > hi) {
      return Invalid(path, "a number" + range);
    }
    return Status::Ok();
  };
}

const FieldCheck kAnyNumber = Number(-std::numeric_limits<double>::max(),
                                     std::numeric_limits<double>::max(), "");
const FieldCheck kFraction = Number(0, 1, " in [0, 1]");
const FieldCheck kNonNegative = Number(0, std::numeric_limits<double>::max(), " >= 0");

// "sha256:" and 64 lower-case hex digits, as artifact digests are written.
Status CheckDigest(const Value& v, const std::string& path) {
  constexpr std::string_view kPrefix = "sha256:";
  if (v.IsString()) {
    std::string_view s(v.GetString(), v.GetStringLength());
    bool ok = s.size() == kPrefix.size() + 64 && s.substr(0, kPrefix.size()) == kPrefix;
    for (size_t i = kPrefix.size(); ok && i < s.size(); ++i) {
      ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    }
    if (ok) return Status::Ok();
  }
  return Invalid(path, "\"sha256:\" followed by 64 lower-case hex digits");
}

// RFC 3339: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM).
Status CheckTimestamp(const Value& v, const std::string& path) {
  const auto fail = [&] {
    return Invalid(path, "an RFC 3339 time such as \"2026-11-30T12:00:00Z\"");
  };
  if (!v.IsString()) return fail();
  std::string_view s(v.GetString(), v.GetStringLength());
  const auto digits = [&](size_t at, size_t n) {
    if (at + n > s.size()) return false;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
    }
    return true;
  };
  const auto is = [&](size_t at, char c) { return at < s.size() && s[at] == c; };
  if (!(digits(0, 4) && is(4, '-') && digits(5, 2) && is(7, '-') && digits(8, 2) &&
        (is(10, 'T') || is(10, 't')) && digits(11, 2) && is(13, ':') && digits(14, 2) &&
        is(16, ':') && digits(17, 2))) {
    return fail();
  }
  size_t at = 19;
  if (is(at, '.')) {
    size_t end = at + 1;
    while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
    if (end == at + 1) return fail();
    at = end;
  }
  const int month = (s[5] - '0') * 10 + (s[6] - '0');
  const int day = (s[8] - '0') * 10 + (s[9] - '0');
  const int hour = (s[11] - '0') * 10 + (s[12] - '0');
  const int minute = (s[14] - '0') * 10 + (s[15] - '0');
  const int second = (s[17] - '0') * 10 + (s[18] - '0');
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
      second > 60) {
    return fail();
  }
  if ((is(at, 'Z') || is(at, 'z')) && at + 1 == s.size()) return Status::Ok();
  if ((is(at, '+') || is(at, '-')) && digits(at + 1, 2) && is(at + 3, ':') &&
      digits(at + 4, 2) && at + 6 == s.size()) {
    return Status::Ok();
  }
  return fail();
}

// An array whose elements each pass `element`, at most 100,000 of them.
FieldCheck ArrayOf(FieldCheck element, std::string_view what) {
  return [element, what = std::string(what)](const Value& v, const std::string& path) {
    if (!v.IsArray() || v.Size() > 100000) return Invalid(path, "an array of " + what);
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      RETURN_IF_ERROR(element(v[i], path + "[" + std::to_string(i) + "]"));
    }
    return Status::Ok();
  };
}

// An object whose members each pass `member` (any names).
FieldCheck MapOf(FieldCheck member, std::string_view what) {
  return [member, what = std::string(what)](const Value& v, const std::string& path) {
    if (!v.IsObject()) return Invalid(path, "an object of " + what);
    for (const auto& m : v.GetObject()) {
      RETURN_IF_ERROR(member(m.value, path + "." + m.name.GetString()));
    }
    return Status::Ok();
  };
}

// An object with these named fields only, each optional.
FieldCheck Record(std::initializer_list<std::pair<const char*, FieldCheck>> fields) {
  std::vector<std::pair<std::string, FieldCheck>> known(fields.begin(), fields.end());
  return [known](const Value& v, const std::string& path) {
    if (!v.IsObject()) return Invalid(path, "an object");
    for (const auto& m : v.GetObject()) {
      const std::string name(m.name.GetString(), m.name.GetStringLength());
      const auto field = std::find_if(known.begin(), known.end(),
                                      [&](const auto& k) { return k.first == name; });
      if (field == known.end()) {
        std::string names;
        for (const auto& k : known) names += (names.empty() ? "" : ", ") + k.first;
        return Status::InvalidArgument(path + " has an unknown field '" + name +
                                       "' (known: " + names + ")");
      }
      RETURN_IF_ERROR(field->second(m.value, path + "." + name));
    }
    return Status::Ok();
  };
}

Status CheckAnyObject(const Value& v, const std::string& path) {
  return v.IsObject() ? Status::Ok() : Invalid(path, "an object");
}

// The well-known metrics have their ranges; any other name is a finite number.
Status CheckMetrics(const Value& v, const std::string& path) {
  if (!v.IsObject()) return Invalid(path, "an object of metric names to numbers");
  for (const auto& m : v.GetObject()) {
    const std::string_view name(m.name.GetString(), m.name.GetStringLength());
    const std::string member = path + "." + std::string(name);
    if (name == "accuracy" || name == "precision" || name == "recall" || name == "f1" ||
        name == "roc_auc") {
      RETURN_IF_ERROR(kFraction(m.value, member));
    } else if (name == "log_loss" || name == "rmse" || name == "mae") {
      RETURN_IF_ERROR(kNonNegative(m.value, member));
    } else if (name == "r2") {
      RETURN_IF_ERROR(Number(-std::numeric_limits<double>::max(), 1, " <= 1")(m.value, member));
    } else {
      RETURN_IF_ERROR(kAnyNumber(m.value, member));
    }
  }
  return Status::Ok();
}

Status CheckTask(const Value& v, const std::string& path) {
  if (v.IsString()) {
    std::string_view s(v.GetString(), v.GetStringLength());
    if (s == "classification" || s == "regression" || s == "other") return Status::Ok();
  }
  return Invalid(path, "\"classification\", \"regression\" or \"other\"");
}

Status CheckLabel(const Value& v, const std::string& path) {
  if (v.IsInt64() || (v.IsString() && v.GetStringLength() <= kMaxText)) return Status::Ok();
  return Invalid(path, "an integer or a string");
}

// The baseline profile the drift monitor reads (docs/python.md); here only
// its envelope: the monitor checks the rest when it reads one.
Status CheckBaseline(const Value& v, const std::string& path) {
  if (!v.IsObject()) return Invalid(path, "an object (a berth-baseline/1 profile)");
  auto format = v.FindMember("format");
  if (format == v.MemberEnd() || !format->value.IsString() ||
      std::string_view(format->value.GetString()) != "berth-baseline/1") {
    return Invalid(path + ".format", "\"berth-baseline/1\"");
  }
  return Status::Ok();
}

const FieldCheck& DatasetCheck() {
  static const FieldCheck check = Record({{"name", CheckText},
                                          {"digest", CheckDigest},
                                          {"uri", CheckText},
                                          {"rows", CheckCount}});
  return check;
}

const FieldCheck& MetadataCheck() {
  static const FieldCheck check = Record({
      {"description", CheckText},
      {"tags", MapOf(CheckText, "strings")},
      {"task", CheckTask},
      {"framework", CheckText},
      {"estimator", CheckText},
      {"trained_at", CheckTimestamp},
      {"dataset", DatasetCheck()},
      {"feature_names", ArrayOf(CheckText, "strings")},
      {"class_labels", ArrayOf(CheckLabel, "integers or strings")},
      {"class_names", ArrayOf(CheckText, "strings")},
      {"metrics", CheckMetrics},
      {"parity", Record({{"rows", CheckCount},
                         {"label_agreement", kFraction},
                         {"max_abs_diff", kNonNegative},
                         {"max_rel_diff", kNonNegative},
                         {"tolerance", kNonNegative},
                         {"passed", CheckBool}})},
      {"lineage", Record({{"source_digest", CheckDigest},
                          {"source_format", CheckText},
                          {"converters", MapOf(CheckText, "version strings")},
                          {"parent_version", Number(1, 9.2e18, " >= 1")}})},
      {"scan", Record({{"scanner", CheckText},
                       {"globals", ArrayOf(CheckText, "strings")},
                       {"trusted", CheckBool},
                       {"findings", ArrayOf(CheckText, "strings")}})},
      {"baseline", CheckBaseline},
      {"extra", CheckAnyObject},
  });
  return check;
}

const FieldCheck& EvaluationCheck() {
  static const FieldCheck check =
      Record({{"metrics", CheckMetrics}, {"dataset", DatasetCheck()}, {"rows", CheckCount}});
  return check;
}

// Whether `v` nests no deeper than `depth` arrays or objects (writing the
// value back recurses, so depth is bounded first).
bool NestsWithin(const Value& v, int depth) {
  if (!v.IsArray() && !v.IsObject()) return true;
  if (depth == 0) return false;
  if (v.IsArray()) {
    for (const Value& e : v.GetArray()) {
      if (!NestsWithin(e, depth - 1)) return false;
    }
  } else {
    for (const auto& m : v.GetObject()) {
      if (!NestsWithin(m.value, depth - 1)) return false;
    }
  }
  return true;
}

constexpr int kMaxDepth = 32;

StatusOr<std::string> CheckJson(std::string_view json, const char* root, const FieldCheck& check,
                                const char* required = nullptr) {
  rapidjson::Document doc;
  // Iterative (no recursion on deep input), full-precision numbers, UTF-8
  // checked (the text is written back into JSON responses).
  const rapidjson::ParseResult parsed =
      ParseExactNumbers<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(
          json, &doc);
  if (parsed.IsError()) {
    return Status::InvalidArgument(std::string(root) + " is not valid JSON: " +
                                   rapidjson::GetParseError_En(parsed.Code()) + " at offset " +
                                   std::to_string(parsed.Offset()));
  }
  if (!doc.IsObject()) return Status::InvalidArgument(std::string(root) + " must be a JSON object");
  if (!NestsWithin(doc, kMaxDepth)) {
    return Status::InvalidArgument(std::string(root) + " nests deeper than " +
                                   std::to_string(kMaxDepth) + " levels");
  }
  RETURN_IF_ERROR(check(doc, root));
  if (required != nullptr && !doc.HasMember(required)) {
    return Status::InvalidArgument(std::string(root) + " needs \"" + required + "\"");
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

StatusOr<std::string> CheckVersionMetadata(std::string_view json) {
  return CheckJson(json, "metadata", MetadataCheck());
}

std::string SignatureJson(const ModelSignature& signature) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (const auto& [key, specs] : {std::pair{"inputs", &signature.inputs},
                                   std::pair{"outputs", &signature.outputs}}) {
    w.Key(key);
    w.StartArray();
    for (const TensorSpec& spec : *specs) {
      w.StartObject();
      w.Key("name");
      w.String(spec.name.data(), static_cast<rapidjson::SizeType>(spec.name.size()));
      w.Key("datatype");
      const std::string_view type = DataTypeName(spec.datatype);
      w.String(type.data(), static_cast<rapidjson::SizeType>(type.size()));
      w.Key("shape");
      w.StartArray();
      for (int64_t d : spec.shape) w.Int64(d);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

StatusOr<std::string> CheckEvaluation(std::string_view json) {
  return CheckJson(json, "evaluation", EvaluationCheck(), "metrics");
}

}  // namespace berth
