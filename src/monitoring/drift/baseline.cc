#include "monitoring/drift/baseline.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/json_document.h"
#include "core/model_name.h"

namespace berth::drift {
namespace {

using Value = rapidjson::Value;

Status Bad(const std::string& where, const std::string& what) {
  return Status::InvalidArgument("baseline: " + where + " " + what);
}

Status ReadString(const Value& obj, const char* key, const std::string& where, std::string* out) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) {
    return Bad(where + "." + key, "must be a string");
  }
  out->assign(it->value.GetString(), it->value.GetStringLength());
  if (out->empty() || out->size() > kMaxNameBytes) {
    return Bad(where + "." + key, "must have 1 to " + std::to_string(kMaxNameBytes) + " bytes");
  }
  return Status::Ok();
}

Status ReadInt(const Value& obj, const char* key, const std::string& where, int64_t* out,
               bool required = true) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) {
    return required ? Bad(where + "." + key, "is missing") : Status::Ok();
  }
  if (!it->value.IsInt64() || it->value.GetInt64() < 0) {
    return Bad(where + "." + key, "must be an integer >= 0");
  }
  *out = it->value.GetInt64();
  return Status::Ok();
}

Status ReadNumber(const Value& obj, const char* key, const std::string& where, double* out) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsNumber() || !std::isfinite(it->value.GetDouble())) {
    return Bad(where + "." + key, "must be a finite number");
  }
  *out = it->value.GetDouble();
  return Status::Ok();
}

Status ReadNumbers(const Value& obj, const char* key, const std::string& where,
                   std::vector<double>* out) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsArray()) return Bad(where + "." + key, "must be a list");
  if (it->value.Size() > kMaxBins + 1) return Bad(where + "." + key, "is too long");
  for (const Value& v : it->value.GetArray()) {
    if (!v.IsNumber() || !std::isfinite(v.GetDouble())) {
      return Bad(where + "." + key, "must hold finite numbers");
    }
    out->push_back(v.GetDouble());
  }
  return Status::Ok();
}

Status ReadFeature(const Value& f, const std::string& where, bool prediction,
                   FeatureProfile* out) {
  if (!f.IsObject()) return Bad(where, "must be an object");
  if (prediction) {
    RETURN_IF_ERROR(ReadString(f, "output", where, &out->tensor));
    out->name = out->tensor;
    if (f.HasMember("name")) RETURN_IF_ERROR(ReadString(f, "name", where, &out->name));
  } else {
    RETURN_IF_ERROR(ReadString(f, "name", where, &out->name));
    RETURN_IF_ERROR(ReadString(f, "input", where, &out->tensor));
  }
  RETURN_IF_ERROR(ReadInt(f, "column", where, &out->column, false));
  if (out->column > (1 << 20)) return Bad(where + ".column", "is too large");
  std::string kind;
  RETURN_IF_ERROR(ReadString(f, "kind", where, &kind));
  RETURN_IF_ERROR(ReadInt(f, "count", where, &out->count));
  RETURN_IF_ERROR(ReadInt(f, "missing", where, &out->missing, false));
  if (kind == "numeric") {
    out->kind = FeatureKind::kNumeric;
    RETURN_IF_ERROR(ReadNumber(f, "mean", where, &out->mean));
    RETURN_IF_ERROR(ReadNumber(f, "std", where, &out->std));
    RETURN_IF_ERROR(ReadNumber(f, "min", where, &out->min));
    RETURN_IF_ERROR(ReadNumber(f, "max", where, &out->max));
    if (out->std < 0) return Bad(where + ".std", "must be >= 0");
    RETURN_IF_ERROR(ReadNumbers(f, "quantiles", where, &out->quantiles));
    if (out->quantiles.size() != kQuantiles) {
      return Bad(where + ".quantiles", "must hold " + std::to_string(kQuantiles) + " numbers");
    }
    if (!std::is_sorted(out->quantiles.begin(), out->quantiles.end())) {
      return Bad(where + ".quantiles", "must be non-decreasing");
    }
    RETURN_IF_ERROR(ReadNumbers(f, "bins", where, &out->bins));
    if (out->bins.size() < 2) return Bad(where + ".bins", "must hold at least 2 edges");
    for (size_t i = 1; i < out->bins.size(); ++i) {
      if (!(out->bins[i] > out->bins[i - 1])) {
        return Bad(where + ".bins", "must be strictly increasing");
      }
    }
    auto counts = f.FindMember("counts");
    if (counts == f.MemberEnd() || !counts->value.IsArray() ||
        counts->value.Size() != out->bins.size() - 1) {
      return Bad(where + ".counts", "must be a list of one count per bin");
    }
    for (const Value& c : counts->value.GetArray()) {
      if (!c.IsInt64() || c.GetInt64() < 0) {
        return Bad(where + ".counts", "must hold integers >= 0");
      }
      out->counts.push_back(c.GetInt64());
    }
  } else if (kind == "categorical") {
    out->kind = FeatureKind::kCategorical;
    auto freq = f.FindMember("frequencies");
    if (freq == f.MemberEnd() || !freq->value.IsObject()) {
      return Bad(where + ".frequencies", "must be an object");
    }
    if (freq->value.MemberCount() > kMaxCategories) {
      return Bad(where + ".frequencies", "has more than " + std::to_string(kMaxCategories) +
                                             " categories");
    }
    for (const auto& m : freq->value.GetObject()) {
      if (!m.value.IsInt64() || m.value.GetInt64() < 0) {
        return Bad(where + ".frequencies", "must map values to integers >= 0");
      }
      out->frequencies[std::string(m.name.GetString(), m.name.GetStringLength())] =
          m.value.GetInt64();
    }
  } else {
    return Bad(where + ".kind", "must be \"numeric\" or \"categorical\"");
  }
  return Status::Ok();
}

StatusOr<BaselineProfile> ParseValue(const Value& doc) {
  if (!doc.IsObject()) return Bad("", "must be a JSON object");
  auto format = doc.FindMember("format");
  if (format == doc.MemberEnd() || !format->value.IsString() ||
      std::string_view(format->value.GetString(), format->value.GetStringLength()) !=
          kBaselineFormat) {
    return Bad("format", "must be \"" + std::string(kBaselineFormat) + "\"");
  }
  BaselineProfile out;
  RETURN_IF_ERROR(ReadInt(doc, "rows", "", &out.rows, false));
  auto features = doc.FindMember("features");
  if (features == doc.MemberEnd() || !features->value.IsArray()) {
    return Bad("features", "must be a list");
  }
  if (features->value.Size() > kMaxFeatures) {
    return Bad("features", "has more than " + std::to_string(kMaxFeatures) + " entries");
  }
  std::set<std::string> names;
  for (rapidjson::SizeType i = 0; i < features->value.Size(); ++i) {
    FeatureProfile f;
    const std::string where = "features[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(ReadFeature(features->value[i], where, false, &f));
    if (!names.insert(f.name).second) {
      return Bad(where + ".name", "'" + PrintableExcerpt(f.name) + "' is repeated");
    }
    out.features.push_back(std::move(f));
  }
  auto prediction = doc.FindMember("prediction");
  if (prediction != doc.MemberEnd() && !prediction->value.IsNull()) {
    FeatureProfile p;
    RETURN_IF_ERROR(ReadFeature(prediction->value, "prediction", true, &p));
    out.prediction = std::move(p);
  }
  return out;
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(Writer& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteFeature(Writer& w, const FeatureProfile& f, bool prediction) {
  w.StartObject();
  w.Key("name");
  WriteString(w, f.name);
  w.Key(prediction ? "output" : "input");
  WriteString(w, f.tensor);
  w.Key("column");
  w.Int64(f.column);
  w.Key("kind");
  w.String(f.kind == FeatureKind::kNumeric ? "numeric" : "categorical");
  w.Key("count");
  w.Int64(f.count);
  w.Key("missing");
  w.Int64(f.missing);
  if (f.kind == FeatureKind::kNumeric) {
    w.Key("mean");
    w.Double(f.mean);
    w.Key("std");
    w.Double(f.std);
    w.Key("min");
    w.Double(f.min);
    w.Key("max");
    w.Double(f.max);
    w.Key("quantiles");
    w.StartArray();
    for (double q : f.quantiles) w.Double(q);
    w.EndArray();
    w.Key("bins");
    w.StartArray();
    for (double b : f.bins) w.Double(b);
    w.EndArray();
    w.Key("counts");
    w.StartArray();
    for (int64_t c : f.counts) w.Int64(c);
    w.EndArray();
  } else {
    w.Key("frequencies");
    w.StartObject();
    for (const auto& [value, count] : f.frequencies) {
      w.Key(value.data(), static_cast<rapidjson::SizeType>(value.size()));
      w.Int64(count);
    }
    w.EndObject();
  }
  w.EndObject();
}

// numpy's default ("linear") quantile of sorted values.
double Quantile(const std::vector<double>& sorted, double p) {
  const double pos = p * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  if (i + 1 >= sorted.size()) return sorted.back();
  return sorted[i] + (sorted[i + 1] - sorted[i]) * (pos - static_cast<double>(i));
}

}  // namespace

StatusOr<BaselineProfile> ParseBaseline(std::string_view json) {
  rapidjson::Document doc;
  if (ParseExactNumbers<0>(json, &doc).IsError()) {
    return Status::InvalidArgument("baseline: not valid JSON");
  }
  return ParseValue(doc);
}

StatusOr<BaselineProfile> BaselineFromMetadata(std::string_view metadata_json) {
  rapidjson::Document doc;
  if (ParseExactNumbers<0>(metadata_json, &doc).IsError() || !doc.IsObject()) {
    return Status::InvalidArgument("the version's metadata is not a JSON object");
  }
  auto it = doc.FindMember("baseline");
  if (it == doc.MemberEnd() || it->value.IsNull()) {
    return Status::NotFound("the version has no baseline");
  }
  return ParseValue(it->value);
}

std::string BaselineToJson(const BaselineProfile& p) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("format");
  w.String(kBaselineFormat.data(), static_cast<rapidjson::SizeType>(kBaselineFormat.size()));
  w.Key("rows");
  w.Int64(p.rows);
  w.Key("features");
  w.StartArray();
  for (const FeatureProfile& f : p.features) WriteFeature(w, f, false);
  w.EndArray();
  if (p.prediction) {
    w.Key("prediction");
    WriteFeature(w, *p.prediction, true);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void ProfileNumeric(std::vector<double>& values, FeatureProfile* out) {
  out->kind = FeatureKind::kNumeric;
  auto missing = std::partition(values.begin(), values.end(),
                                [](double v) { return std::isfinite(v); });
  out->missing = values.end() - missing;
  values.erase(missing, values.end());
  out->count = static_cast<int64_t>(values.size());
  out->quantiles.clear();
  out->bins.clear();
  out->counts.clear();
  if (values.empty()) {
    // No value: one bin around 0, so that the profile still parses.
    out->quantiles.assign(kQuantiles, 0);
    out->bins = {0, 1};
    out->counts = {0};
    out->mean = out->std = out->min = out->max = 0;
    return;
  }
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) sum += v;
  out->mean = sum / static_cast<double>(values.size());
  double squares = 0;
  for (double v : values) squares += (v - out->mean) * (v - out->mean);
  out->std = std::sqrt(squares / static_cast<double>(values.size()));
  out->min = values.front();
  out->max = values.back();
  for (size_t i = 0; i < kQuantiles; ++i) {
    out->quantiles.push_back(Quantile(values, static_cast<double>(i) / (kQuantiles - 1)));
  }
  for (int d = 0; d <= 10; ++d) {
    const double edge = Quantile(values, d / 10.0);
    if (out->bins.empty() || edge > out->bins.back()) out->bins.push_back(edge);
  }
  if (out->bins.size() < 2) out->bins.push_back(out->bins.back() + 1);
  out->counts.assign(out->bins.size() - 1, 0);
  // numpy.histogram's bins: [e_i, e_i+1), the last one closed.
  for (double v : values) {
    size_t b = static_cast<size_t>(std::upper_bound(out->bins.begin(), out->bins.end(), v) -
                                   out->bins.begin());
    b = b == 0 ? 0 : b - 1;
    ++out->counts[std::min(b, out->counts.size() - 1)];
  }
}

void ProfileCategorical(std::span<const std::string> values, FeatureProfile* out) {
  out->kind = FeatureKind::kCategorical;
  out->frequencies.clear();
  out->count = static_cast<int64_t>(values.size());
  out->missing = 0;
  for (const std::string& v : values) {
    if (out->frequencies.size() >= kMaxCategories && !out->frequencies.count(v)) continue;
    ++out->frequencies[v];
  }
}

}  // namespace berth::drift
