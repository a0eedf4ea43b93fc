#include "registry/config_parser.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "core/logging.h"
#include "registry/triton_config.h"

#include "core/float16.h"

namespace berth {
namespace {

// Fails on any key of `node` outside `allowed`, naming it and the path.
Status CheckKeys(const YAML::Node& node, const std::string& where,
                 const std::set<std::string>& allowed) {
  if (!node.IsMap()) return Status::InvalidArgument(where + " must be a mapping");
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return Status::InvalidArgument("unknown field '" + key + "' in " + where +
                                     " (allowed: " + list + ")");
    }
  }
  return Status::Ok();
}

template <typename T>
Status Read(const YAML::Node& node, const std::string& what, T* out) {
  try {
    *out = node.as<T>();
    return Status::Ok();
  } catch (const YAML::Exception&) {
    return Status::InvalidArgument("field '" + what + "' has an invalid value");
  }
}

// Reads the name, datatype and shape of `n` (whose keys the caller checked).
Status ReadTensorSpec(const YAML::Node& n, const std::string& where, TensorSpec* spec) {
  if (!n["name"]) return Status::InvalidArgument(where + " needs a 'name'");
  RETURN_IF_ERROR(Read(n["name"], where + ".name", &spec->name));
  if (!n["datatype"]) return Status::InvalidArgument(where + " needs a 'datatype'");
  std::string dt;
  RETURN_IF_ERROR(Read(n["datatype"], where + ".datatype", &dt));
  spec->datatype = DataTypeFromName(dt);
  if (spec->datatype == DataType::kInvalid) {
    return Status::InvalidArgument(where + ".datatype '" + dt + "' is not a v2 datatype");
  }
  if (!n["shape"]) return Status::InvalidArgument(where + " needs a 'shape'");
  RETURN_IF_ERROR(Read(n["shape"], where + ".shape", &spec->shape));
  for (int64_t d : spec->shape) {
    if (d < -1) return Status::InvalidArgument(where + ".shape has a dimension below -1");
  }
  return Status::Ok();
}

Status ReadTensorSpecs(const YAML::Node& node, const std::string& what,
                       std::vector<TensorSpec>* out) {
  if (!node.IsSequence()) return Status::InvalidArgument("'" + what + "' must be a list");
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node& n = node[i];
    const std::string where = what + "[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(CheckKeys(n, where, {"name", "datatype", "shape"}));
    TensorSpec spec;
    RETURN_IF_ERROR(ReadTensorSpec(n, where, &spec));
    out->push_back(std::move(spec));
  }
  return Status::Ok();
}

Status ReadVersionPolicy(const YAML::Node& node, VersionPolicy* policy) {
  RETURN_IF_ERROR(CheckKeys(node, "version_policy", {"latest", "all", "specific"}));
  if (node.size() != 1) {
    return Status::InvalidArgument("version_policy takes exactly one of latest, all, specific");
  }
  if (node["latest"]) {
    policy->kind = VersionPolicy::Kind::kLatest;
    RETURN_IF_ERROR(Read(node["latest"], "version_policy.latest", &policy->latest));
    if (policy->latest < 1) {
      return Status::InvalidArgument("version_policy.latest must be at least 1");
    }
  } else if (node["all"]) {
    bool all = false;
    RETURN_IF_ERROR(Read(node["all"], "version_policy.all", &all));
    if (!all) return Status::InvalidArgument("version_policy.all must be true");
    policy->kind = VersionPolicy::Kind::kAll;
  } else {
    policy->kind = VersionPolicy::Kind::kSpecific;
    RETURN_IF_ERROR(Read(node["specific"], "version_policy.specific", &policy->specific));
    if (policy->specific.empty()) {
      return Status::InvalidArgument("version_policy.specific must list at least one version");
    }
    std::set<int64_t> seen;
    for (int64_t v : policy->specific) {
      // Version directories are positive integers; 0 or -1 could never match.
      if (v < 1) {
        return Status::InvalidArgument("version_policy.specific lists version " +
                                       std::to_string(v) + "; versions start at 1");
      }
      if (!seen.insert(v).second) {
        return Status::InvalidArgument("version_policy.specific lists version " +
                                       std::to_string(v) + " twice");
      }
    }
  }
  return Status::Ok();
}

Status ReadOnnxRuntime(const YAML::Node& node, OnnxRuntimeOptions* o) {
  RETURN_IF_ERROR(CheckKeys(node, "onnxruntime",
                            {"intra_op_threads", "inter_op_threads", "graph_optimization_level"}));
  if (node["intra_op_threads"]) {
    RETURN_IF_ERROR(Read(node["intra_op_threads"], "onnxruntime.intra_op_threads",
                         &o->intra_op_threads));
  }
  if (node["inter_op_threads"]) {
    RETURN_IF_ERROR(Read(node["inter_op_threads"], "onnxruntime.inter_op_threads",
                         &o->inter_op_threads));
  }
  if (o->intra_op_threads < 0 || o->inter_op_threads < 0) {
    return Status::InvalidArgument("onnxruntime thread counts must be >= 0");
  }
  if (node["graph_optimization_level"]) {
    RETURN_IF_ERROR(Read(node["graph_optimization_level"], "onnxruntime.graph_optimization_level",
                         &o->graph_optimization_level));
    static const std::set<std::string> kLevels = {"disable", "basic", "extended", "all"};
    if (!kLevels.count(o->graph_optimization_level)) {
      return Status::InvalidArgument("onnxruntime.graph_optimization_level '" +
                                     o->graph_optimization_level +
                                     "' is not one of disable, basic, extended, all");
    }
  }
  return Status::Ok();
}

Status ReadDynamicBatching(const YAML::Node& node, DynamicBatchingConfig* d) {
  RETURN_IF_ERROR(CheckKeys(node, "dynamic_batching",
                            {"max_queue_delay_microseconds", "preferred_batch_sizes",
                             "max_queue_size"}));
  if (node["max_queue_delay_microseconds"]) {
    RETURN_IF_ERROR(Read(node["max_queue_delay_microseconds"],
                         "dynamic_batching.max_queue_delay_microseconds",
                         &d->max_queue_delay_microseconds));
    if (d->max_queue_delay_microseconds < 0) {
      return Status::InvalidArgument("dynamic_batching.max_queue_delay_microseconds must be >= 0");
    }
  }
  if (node["preferred_batch_sizes"]) {
    RETURN_IF_ERROR(Read(node["preferred_batch_sizes"], "dynamic_batching.preferred_batch_sizes",
                         &d->preferred_batch_sizes));
    for (int64_t size : d->preferred_batch_sizes) {
      if (size < 1) {
        return Status::InvalidArgument("dynamic_batching.preferred_batch_sizes must be >= 1");
      }
    }
  }
  if (node["max_queue_size"]) {
    RETURN_IF_ERROR(Read(node["max_queue_size"], "dynamic_batching.max_queue_size",
                         &d->max_queue_size));
    if (d->max_queue_size < 1) {
      return Status::InvalidArgument("dynamic_batching.max_queue_size must be >= 1");
    }
  }
  return Status::Ok();
}

// Appends the scalars of `node` (a scalar or nested lists of them), in
// row-major order, to `out`.
Status FlattenData(const YAML::Node& node, const std::string& where, int64_t limit,
                   std::vector<YAML::Node>* out) {
  if (node.IsSequence()) {
    for (const YAML::Node& n : node) RETURN_IF_ERROR(FlattenData(n, where, limit, out));
    return Status::Ok();
  }
  if (!node.IsScalar()) return Status::InvalidArgument(where + " must hold scalars or lists");
  if (static_cast<int64_t>(out->size()) >= limit) {
    return Status::InvalidArgument(where + " has more values than its shape holds");
  }
  out->push_back(node);
  return Status::Ok();
}

template <typename T>
Status StoreNumber(const YAML::Node& node, const std::string& where, std::byte* dst) {
  T value{};
  if constexpr (std::is_floating_point_v<T>) {
    double d = 0;
    RETURN_IF_ERROR(Read(node, where, &d));
    value = static_cast<T>(d);
  } else if constexpr (std::is_signed_v<T>) {
    int64_t i = 0;
    RETURN_IF_ERROR(Read(node, where, &i));
    if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max()) {
      return Status::InvalidArgument(where + " is out of range for its datatype");
    }
    value = static_cast<T>(i);
  } else {
    uint64_t u = 0;
    // yaml-cpp reads "-1" as a huge unsigned value; refuse a sign outright.
    if (node.Scalar().starts_with("-")) {
      return Status::InvalidArgument(where + " is out of range for its datatype");
    }
    RETURN_IF_ERROR(Read(node, where, &u));
    if (u > std::numeric_limits<T>::max()) {
      return Status::InvalidArgument(where + " is out of range for its datatype");
    }
    value = static_cast<T>(u);
  }
  std::memcpy(dst, &value, sizeof(T));
  return Status::Ok();
}

// Fills `tensor` (allocated) from the config's values.
Status StoreData(const std::vector<YAML::Node>& values, const std::string& where,
                 Tensor* tensor) {
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const YAML::Node& v = values[i];
    std::byte* dst = tensor->bytes().data() + i * DataTypeByteSize(tensor->datatype());
    switch (tensor->datatype()) {
      case DataType::kBool: {
        bool b = false;
        RETURN_IF_ERROR(Read(v, at, &b));
        *dst = std::byte{b ? uint8_t{1} : uint8_t{0}};
        break;
      }
      case DataType::kUint8: RETURN_IF_ERROR(StoreNumber<uint8_t>(v, at, dst)); break;
      case DataType::kUint16: RETURN_IF_ERROR(StoreNumber<uint16_t>(v, at, dst)); break;
      case DataType::kUint32: RETURN_IF_ERROR(StoreNumber<uint32_t>(v, at, dst)); break;
      case DataType::kUint64: RETURN_IF_ERROR(StoreNumber<uint64_t>(v, at, dst)); break;
      case DataType::kInt8: RETURN_IF_ERROR(StoreNumber<int8_t>(v, at, dst)); break;
      case DataType::kInt16: RETURN_IF_ERROR(StoreNumber<int16_t>(v, at, dst)); break;
      case DataType::kInt32: RETURN_IF_ERROR(StoreNumber<int32_t>(v, at, dst)); break;
      case DataType::kInt64: RETURN_IF_ERROR(StoreNumber<int64_t>(v, at, dst)); break;
      case DataType::kFp32: RETURN_IF_ERROR(StoreNumber<float>(v, at, dst)); break;
      case DataType::kFp64: RETURN_IF_ERROR(StoreNumber<double>(v, at, dst)); break;
      case DataType::kFp16: {
        float f = 0;
        RETURN_IF_ERROR(StoreNumber<float>(v, at, reinterpret_cast<std::byte*>(&f)));
        const uint16_t half = FloatToHalf(f);
        std::memcpy(dst, &half, sizeof(half));
        break;
      }
      case DataType::kBytes: RETURN_IF_ERROR(Read(v, at, &tensor->strings()[i])); break;
      case DataType::kInvalid: return Status::InvalidArgument(at + " has no datatype");
    }
  }
  return Status::Ok();
}

Status ReadWarmupInputs(const YAML::Node& node, std::vector<Tensor>* out) {
  if (!node.IsSequence() || node.size() == 0) {
    return Status::InvalidArgument("'warmup.inputs' must be a non-empty list");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node& n = node[i];
    const std::string where = "warmup.inputs[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(CheckKeys(n, where, {"name", "datatype", "shape", "data"}));
    TensorSpec spec;
    RETURN_IF_ERROR(ReadTensorSpec(n, where, &spec));
    if (!names.insert(spec.name).second) {
      return Status::InvalidArgument(where + ": input '" + spec.name + "' is given twice");
    }
    const int64_t count = ElementCount(spec.shape);
    const bool variable = std::find(spec.shape.begin(), spec.shape.end(), -1) != spec.shape.end();
    if (variable) {
      return Status::InvalidArgument(where + ".shape must be fully known (no -1): the warm-up "
                                     "request sends exactly this shape");
    }
    const int64_t element = spec.datatype == DataType::kBytes
                                ? static_cast<int64_t>(sizeof(std::string))
                                : static_cast<int64_t>(DataTypeByteSize(spec.datatype));
    if (count < 0 || count > kMaxWarmupInputBytes / element) {
      return Status::InvalidArgument(where + " is over the warm-up limit of " +
                                     std::to_string(kMaxWarmupInputBytes >> 20) + " MiB");
    }
    Tensor tensor(spec.name, spec.datatype, spec.shape);
    RETURN_IF_ERROR(tensor.Allocate());
    if (n["data"]) {
      std::vector<YAML::Node> values;
      RETURN_IF_ERROR(FlattenData(n["data"], where + ".data", count, &values));
      if (static_cast<int64_t>(values.size()) != count) {
        return Status::InvalidArgument(where + ".data has " + std::to_string(values.size()) +
                                       " values but shape " + ShapeToString(spec.shape) +
                                       " holds " + std::to_string(count));
      }
      RETURN_IF_ERROR(StoreData(values, where + ".data", &tensor));
    }
    out->push_back(std::move(tensor));
  }
  return Status::Ok();
}

Status ReadWarmup(const YAML::Node& node, WarmupConfig* w) {
  RETURN_IF_ERROR(CheckKeys(node, "warmup", {"count", "inputs"}));
  if (node["count"]) {
    RETURN_IF_ERROR(Read(node["count"], "warmup.count", &w->count));
    if (w->count < 0 || w->count > kMaxWarmupCount) {
      return Status::InvalidArgument("warmup.count must be from 0 (no warm-up) to " +
                                     std::to_string(kMaxWarmupCount));
    }
  }
  if (node["inputs"]) RETURN_IF_ERROR(ReadWarmupInputs(node["inputs"], &w->inputs));
  return Status::Ok();
}

// Upper bound of monitoring.window_count: the window holds every sampled
// row's feature values in memory.
constexpr int64_t kMaxWindowCount = 1'000'000;

// Bounds of monitoring.feedback: predictions waiting for their truth sit in
// the registry store, the joined window in memory.
constexpr double kMaxRetentionHours = 366.0 * 24;
constexpr int64_t kMaxPredictions = 100'000'000;
constexpr int64_t kMaxFeedbackWindow = 1'000'000;

// `monitoring: feedback:` (an empty mapping or null turns it on with the
// defaults).
Status ReadFeedback(const YAML::Node& node, FeedbackConfig* f) {
  f->enabled = true;
  if (node.IsNull()) return Status::Ok();
  RETURN_IF_ERROR(CheckKeys(node, "monitoring.feedback",
                            {"retention_hours", "max_predictions", "window_count", "task",
                             "label_output", "score_output", "positive_class"}));
  if (node["retention_hours"]) {
    RETURN_IF_ERROR(
        Read(node["retention_hours"], "monitoring.feedback.retention_hours", &f->retention_hours));
    if (!(f->retention_hours > 0 && f->retention_hours <= kMaxRetentionHours)) {
      return Status::InvalidArgument(
          "monitoring.feedback.retention_hours must be above 0 and at most " +
          std::to_string(static_cast<int64_t>(kMaxRetentionHours)));
    }
  }
  auto integer = [&](const char* key, int64_t* out, int64_t max) -> Status {
    if (!node[key]) return Status::Ok();
    const std::string where = std::string("monitoring.feedback.") + key;
    RETURN_IF_ERROR(Read(node[key], where, out));
    if (*out < 1 || *out > max) {
      return Status::InvalidArgument(where + " must be from 1 to " + std::to_string(max));
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(integer("max_predictions", &f->max_predictions, kMaxPredictions));
  RETURN_IF_ERROR(integer("window_count", &f->window_count, kMaxFeedbackWindow));
  for (auto [key, out] : {std::pair{"task", &f->task}, std::pair{"label_output", &f->label_output},
                          std::pair{"score_output", &f->score_output},
                          std::pair{"positive_class", &f->positive_class}}) {
    if (node[key]) RETURN_IF_ERROR(Read(node[key], std::string("monitoring.feedback.") + key, out));
  }
  if (!f->task.empty() && f->task != "classification" && f->task != "regression") {
    return Status::InvalidArgument(
        "monitoring.feedback.task must be 'classification' or 'regression', not '" + f->task + "'");
  }
  if (f->positive_class.empty() || f->positive_class.size() > 256) {
    return Status::InvalidArgument("monitoring.feedback.positive_class must be 1 to 256 bytes");
  }
  return Status::Ok();
}

Status ReadMonitoring(const YAML::Node& node, MonitoringConfig* m) {
  RETURN_IF_ERROR(CheckKeys(node, "monitoring",
                            {"sample_rate", "window_count", "window_seconds", "min_window",
                             "psi_threshold", "wasserstein_threshold", "ks_threshold",
                             "js_threshold", "feedback", "redact"}));
  auto real = [&](const char* key, double* out, double max) -> Status {
    if (!node[key]) return Status::Ok();
    RETURN_IF_ERROR(Read(node[key], std::string("monitoring.") + key, out));
    if (!(*out >= 0 && *out <= max)) {
      return Status::InvalidArgument(std::string("monitoring.") + key + " must be from 0 to " +
                                     std::to_string(max));
    }
    return Status::Ok();
  };
  auto integer = [&](const char* key, int64_t* out, int64_t min, int64_t max) -> Status {
    if (!node[key]) return Status::Ok();
    RETURN_IF_ERROR(Read(node[key], std::string("monitoring.") + key, out));
    if (*out < min || *out > max) {
      return Status::InvalidArgument(std::string("monitoring.") + key + " must be from " +
                                     std::to_string(min) + " to " + std::to_string(max));
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(real("sample_rate", &m->sample_rate, 1));
  RETURN_IF_ERROR(integer("window_count", &m->window_count, 1, kMaxWindowCount));
  RETURN_IF_ERROR(integer("window_seconds", &m->window_seconds, 0, 366LL * 86400));
  RETURN_IF_ERROR(integer("min_window", &m->min_window, 1, kMaxWindowCount));
  RETURN_IF_ERROR(real("psi_threshold", &m->psi_threshold, 100));
  RETURN_IF_ERROR(real("wasserstein_threshold", &m->wasserstein_threshold, 100));
  RETURN_IF_ERROR(real("ks_threshold", &m->ks_threshold, 1));
  RETURN_IF_ERROR(real("js_threshold", &m->js_threshold, 1));
  if (node["redact"]) {
    if (!node["redact"].IsSequence()) {
      return Status::InvalidArgument("monitoring.redact must be a list of input or output names");
    }
    RETURN_IF_ERROR(Read(node["redact"], "monitoring.redact", &m->redact));
    for (const std::string& name : m->redact) {
      if (name.empty()) return Status::InvalidArgument("monitoring.redact has an empty name");
    }
  }
  if (node["feedback"]) RETURN_IF_ERROR(ReadFeedback(node["feedback"], &m->feedback));
  return Status::Ok();
}

Status ReadPython(const YAML::Node& node, PythonRuntimeConfig* p) {
  RETURN_IF_ERROR(CheckKeys(node, "python",
                            {"model_file", "interpreter", "timeout_ms", "startup_timeout_ms"}));
  if (node["model_file"]) {
    RETURN_IF_ERROR(Read(node["model_file"], "python.model_file", &p->model_file));
    // One plain name inside the version directory: the server opens it.
    if (p->model_file.empty() || p->model_file.size() > 255 || p->model_file == "." ||
        p->model_file == ".." || p->model_file.find_first_of(std::string("/\\\0", 3)) !=
                                     std::string::npos) {
      return Status::InvalidArgument(
          "python.model_file must be a plain file name in the version directory");
    }
  }
  if (node["interpreter"]) {
    RETURN_IF_ERROR(Read(node["interpreter"], "python.interpreter", &p->interpreter));
    if (p->interpreter.empty() || p->interpreter.find('\0') != std::string::npos) {
      return Status::InvalidArgument("python.interpreter must be a program name or path");
    }
  }
  auto millis = [&](const char* key, int64_t* out) -> Status {
    if (!node[key]) return Status::Ok();
    RETURN_IF_ERROR(Read(node[key], std::string("python.") + key, out));
    if (*out < 1 || *out > 86'400'000) {
      return Status::InvalidArgument(std::string("python.") + key +
                                     " must be from 1 to 86400000 (one day)");
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(millis("timeout_ms", &p->timeout_ms));
  RETURN_IF_ERROR(millis("startup_timeout_ms", &p->startup_timeout_ms));
  return Status::Ok();
}

// A Prometheus duration: one or more NUMBER UNIT pairs, units ms, s, m, h,
// d, w (e.g. "30s", "1h30m"), at most a year.
Status ReadDuration(const YAML::Node& node, const std::string& where,
                    std::chrono::milliseconds* out) {
  std::string text;
  RETURN_IF_ERROR(Read(node, where, &text));
  const auto invalid = [&] {
    return Status::InvalidArgument(where + " '" + text +
                                   "' is not a duration such as 30s, 5m or 1h30m (units ms, s, m, "
                                   "h, d, w; not negative; at most 366d)");
  };
  if (text.empty()) return invalid();
  constexpr int64_t kMaxMs = 366LL * 86400 * 1000;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    const size_t digits = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + (text[i] - '0');
      if (n > kMaxMs) return invalid();
      ++i;
    }
    if (i == digits) return invalid();
    const size_t unit_start = i;
    while (i < text.size() && text[i] >= 'a' && text[i] <= 'z') ++i;
    const std::string unit = text.substr(unit_start, i - unit_start);
    static const std::map<std::string, int64_t> kUnits = {
        {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000},
        {"w", 604'800'000}};
    auto u = kUnits.find(unit);
    if (u == kUnits.end() || n > (kMaxMs - total) / u->second) return invalid();
    total += n * u->second;
  }
  *out = std::chrono::milliseconds(total);
  return Status::Ok();
}

// Reads one alert rule; `where` names it (`alerts[0]`). `with_model`: the
// server's file, where a rule may name its model.
Status ReadAlertRule(const YAML::Node& n, const std::string& where, bool with_model,
                     AlertRule* rule) {
  std::set<std::string> keys = {"alert", "metric", "op",      "threshold", "window",
                                "for",   "feature", "labels", "summary"};
  if (with_model) keys.insert("model");
  RETURN_IF_ERROR(CheckKeys(n, where, keys));
  for (const char* required : {"alert", "metric", "op", "threshold"}) {
    if (!n[required]) return Status::InvalidArgument(where + " needs '" + required + "'");
  }
  RETURN_IF_ERROR(Read(n["alert"], where + ".alert", &rule->name));
  // The name is a Prometheus label value and a log field: keep it plain.
  const bool plain = !rule->name.empty() && rule->name.size() <= 128 &&
                     std::all_of(rule->name.begin(), rule->name.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
                              c == '-' || c == '.' || c == ':';
                     });
  if (!plain) {
    return Status::InvalidArgument(where + ".alert '" + rule->name +
                                   "' must be 1 to 128 letters, digits, '_', '-', '.' or ':'");
  }
  RETURN_IF_ERROR(Read(n["metric"], where + ".metric", &rule->metric));
  const AlertMetric* metric = FindAlertMetric(rule->metric);
  if (metric == nullptr) {
    std::string list;
    for (const AlertMetric& m : kAlertMetrics) {
      list += (list.empty() ? "" : ", ") + std::string(m.name);
    }
    return Status::InvalidArgument(where + ".metric '" + rule->metric +
                                   "' is not a metric alerts know (" + list + ")");
  }
  std::string op;
  RETURN_IF_ERROR(Read(n["op"], where + ".op", &op));
  static const std::map<std::string, AlertComparison> kOps = {
      {">", AlertComparison::kGreater},
      {">=", AlertComparison::kGreaterOrEqual},
      {"<", AlertComparison::kLess},
      {"<=", AlertComparison::kLessOrEqual}};
  auto found = kOps.find(op);
  if (found == kOps.end()) {
    return Status::InvalidArgument(where + ".op '" + op + "' is not one of >, >=, <, <=");
  }
  rule->op = found->second;
  RETURN_IF_ERROR(Read(n["threshold"], where + ".threshold", &rule->threshold));
  if (!std::isfinite(rule->threshold)) {
    return Status::InvalidArgument(where + ".threshold must be a finite number");
  }
  if (metric->windowed) {
    if (!n["window"]) {
      return Status::InvalidArgument(where + " needs a 'window' (e.g. 5m): metric '" +
                                     rule->metric + "' is computed over one");
    }
    RETURN_IF_ERROR(ReadDuration(n["window"], where + ".window", &rule->window));
    if (rule->window.count() <= 0) {
      return Status::InvalidArgument(where + ".window must be above 0");
    }
  } else if (n["window"]) {
    return Status::InvalidArgument(where + ".window is not used by metric '" + rule->metric +
                                   "', which is read as it is (the drift window is the model's "
                                   "monitoring: window)");
  }
  if (n["for"]) RETURN_IF_ERROR(ReadDuration(n["for"], where + ".for", &rule->for_duration));
  if (n["feature"]) {
    if (!metric->takes_feature) {
      return Status::InvalidArgument(where + ".feature is used only by the drift metrics");
    }
    RETURN_IF_ERROR(Read(n["feature"], where + ".feature", &rule->feature));
  }
  if (with_model && n["model"]) RETURN_IF_ERROR(Read(n["model"], where + ".model", &rule->model));
  if (n["summary"]) RETURN_IF_ERROR(Read(n["summary"], where + ".summary", &rule->summary));
  if (n["labels"]) {
    RETURN_IF_ERROR(Read(n["labels"], where + ".labels", &rule->labels));
    for (const auto& [name, value] : rule->labels) {
      const bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                         std::all_of(name.begin(), name.end(), [](char c) {
                           return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                         });
      if (!valid) {
        return Status::InvalidArgument(where + ".labels: '" + name +
                                       "' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
      }
      static const std::set<std::string> kReserved = {"alertname", "model", "version", "metric"};
      if (kReserved.count(name)) {
        return Status::InvalidArgument(where + ".labels: '" + name + "' is set by Berth");
      }
    }
  }
  return Status::Ok();
}

// A list of rules whose names are unique.
Status ReadAlertRules(const YAML::Node& node, const std::string& what, bool with_model,
                      std::vector<AlertRule>* out) {
  if (!node.IsSequence()) return Status::InvalidArgument("'" + what + "' must be a list");
  std::set<std::pair<std::string, std::string>> names;
  for (size_t i = 0; i < node.size(); ++i) {
    AlertRule rule;
    const std::string where = what + "[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(ReadAlertRule(node[i], where, with_model, &rule));
    if (!names.emplace(rule.name, rule.model).second) {
      return Status::InvalidArgument(where + ".alert '" + rule.name +
                                     "' is used by an earlier rule" +
                                     (rule.model.empty() ? "" : " for the same model"));
    }
    out->push_back(std::move(rule));
  }
  return Status::Ok();
}

StatusOr<ModelConfig> ParseNode(const YAML::Node& root) {
  RETURN_IF_ERROR(CheckKeys(root, "model config",
                            {"name", "backend", "max_batch_size", "version_policy", "onnxruntime",
                             "allow_nan", "inputs", "outputs", "dynamic_batching",
                             "instance_count", "warmup", "monitoring", "trust", "python", "alerts"}));
  ModelConfig c;
  if (root["name"]) RETURN_IF_ERROR(Read(root["name"], "name", &c.name));
  if (root["backend"]) RETURN_IF_ERROR(Read(root["backend"], "backend", &c.backend));
  if (root["max_batch_size"]) {
    RETURN_IF_ERROR(Read(root["max_batch_size"], "max_batch_size", &c.max_batch_size));
    if (c.max_batch_size < 0) return Status::InvalidArgument("max_batch_size must be >= 0");
  }
  if (root["version_policy"]) RETURN_IF_ERROR(ReadVersionPolicy(root["version_policy"], &c.version_policy));
  if (root["onnxruntime"]) RETURN_IF_ERROR(ReadOnnxRuntime(root["onnxruntime"], &c.onnxruntime));
  if (root["allow_nan"]) RETURN_IF_ERROR(Read(root["allow_nan"], "allow_nan", &c.allow_nan));
  if (root["dynamic_batching"]) {
    // An empty mapping (`dynamic_batching: {}`) turns batching on with defaults.
    c.dynamic_batching.emplace();
    if (!root["dynamic_batching"].IsNull()) {
      RETURN_IF_ERROR(ReadDynamicBatching(root["dynamic_batching"], &*c.dynamic_batching));
    }
    if (c.max_batch_size < 1) {
      return Status::InvalidArgument("dynamic_batching needs max_batch_size > 0");
    }
    for (int64_t size : c.dynamic_batching->preferred_batch_sizes) {
      if (size > c.max_batch_size) {
        return Status::InvalidArgument("dynamic_batching.preferred_batch_sizes has " +
                                       std::to_string(size) + ", over max_batch_size " +
                                       std::to_string(c.max_batch_size));
      }
    }
  }
  if (root["instance_count"]) {
    RETURN_IF_ERROR(Read(root["instance_count"], "instance_count", &c.instance_count));
    if (c.instance_count < 1) return Status::InvalidArgument("instance_count must be >= 1");
  }
  if (root["inputs"]) RETURN_IF_ERROR(ReadTensorSpecs(root["inputs"], "inputs", &c.inputs));
  if (root["outputs"]) RETURN_IF_ERROR(ReadTensorSpecs(root["outputs"], "outputs", &c.outputs));
  if (root["warmup"]) RETURN_IF_ERROR(ReadWarmup(root["warmup"], &c.warmup));
  if (root["monitoring"] && !root["monitoring"].IsNull()) {
    RETURN_IF_ERROR(ReadMonitoring(root["monitoring"], &c.monitoring));
  }
  if (root["trust"]) RETURN_IF_ERROR(Read(root["trust"], "trust", &c.trust));
  if (root["python"]) {
    if (c.backend != "python") {
      return Status::InvalidArgument("'python' settings apply only to backend: python");
    }
    if (!root["python"].IsNull()) RETURN_IF_ERROR(ReadPython(root["python"], &c.python));
  }
  if (root["alerts"] && !root["alerts"].IsNull()) {
    RETURN_IF_ERROR(ReadAlertRules(root["alerts"], "alerts", false, &c.alerts));
  }
  return c;
}

Status ReconcileList(const std::string& kind, const std::vector<TensorSpec>& declared,
                     const std::vector<TensorSpec>& file, bool must_cover_all,
                     std::vector<TensorSpec>* out) {
  if (declared.empty()) {
    *out = file;
    return Status::Ok();
  }
  std::set<std::string> names;
  for (const TensorSpec& d : declared) {
    if (!names.insert(d.name).second) {
      return Status::InvalidArgument(kind + " '" + d.name + "' is declared twice");
    }
    const TensorSpec* f = nullptr;
    for (const auto& s : file) {
      if (s.name == d.name) f = &s;
    }
    if (f == nullptr) {
      return Status::InvalidArgument("config declares " + kind + " '" + d.name +
                                     "' but the model has no such " + kind);
    }
    if (f->datatype != d.datatype) {
      return Status::InvalidArgument("config declares " + kind + " '" + d.name + "' as " +
                                     std::string(DataTypeName(d.datatype)) + " but the model has " +
                                     std::string(DataTypeName(f->datatype)));
    }
    bool compatible = f->shape.size() == d.shape.size();
    for (size_t i = 0; compatible && i < d.shape.size(); ++i) {
      compatible = f->shape[i] < 0 || f->shape[i] == d.shape[i];
    }
    // A model file may leave the rank unknown (empty shape); trust the config then.
    if (!compatible && !f->shape.empty()) {
      return Status::InvalidArgument("config declares " + kind + " '" + d.name + "' with shape " +
                                     ShapeToString(d.shape) + " but the model has " +
                                     ShapeToString(f->shape));
    }
  }
  if (must_cover_all) {
    for (const auto& f : file) {
      if (!names.count(f.name)) {
        return Status::InvalidArgument("config does not declare the model's " + kind + " '" +
                                       f.name + "'");
      }
    }
  }
  *out = declared;
  return Status::Ok();
}

}  // namespace

StatusOr<ModelConfig> ParseModelConfig(const std::string& text) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return Status::InvalidArgument("the model config is empty");
    return ParseNode(root);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("the model config is not valid YAML/JSON: ") +
                                   e.what());
  }
}

StatusOr<AlertsFile> ParseAlertsFile(const std::string& text) {
  AlertsFile out;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) return out;
    RETURN_IF_ERROR(CheckKeys(root, "the alerts file", {"webhook", "rules"}));
    if (root["webhook"] && !root["webhook"].IsNull()) {
      const YAML::Node& w = root["webhook"];
      RETURN_IF_ERROR(CheckKeys(w, "webhook", {"url", "timeout", "retries", "ca_file"}));
      if (!w["url"]) return Status::InvalidArgument("webhook needs a 'url'");
      RETURN_IF_ERROR(Read(w["url"], "webhook.url", &out.webhook.url));
      if (out.webhook.url.empty()) return Status::InvalidArgument("webhook.url is empty");
      if (w["timeout"]) {
        RETURN_IF_ERROR(ReadDuration(w["timeout"], "webhook.timeout", &out.webhook.timeout));
        if (out.webhook.timeout < std::chrono::milliseconds(1) ||
            out.webhook.timeout > std::chrono::minutes(1)) {
          return Status::InvalidArgument("webhook.timeout must be from 1ms to 1m");
        }
      }
      if (w["ca_file"]) {
        RETURN_IF_ERROR(Read(w["ca_file"], "webhook.ca_file", &out.webhook.ca_file));
        if (out.webhook.ca_file.empty()) return Status::InvalidArgument("webhook.ca_file is empty");
      }
      if (w["retries"]) {
        RETURN_IF_ERROR(Read(w["retries"], "webhook.retries", &out.webhook.retries));
        if (out.webhook.retries < 0 || out.webhook.retries > 10) {
          return Status::InvalidArgument("webhook.retries must be from 0 to 10");
        }
      }
    }
    if (root["rules"] && !root["rules"].IsNull()) {
      RETURN_IF_ERROR(ReadAlertRules(root["rules"], "rules", true, &out.rules));
    }
    return out;
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(std::string("the alerts file is not valid YAML/JSON: ") +
                                   e.what());
  }
}

StatusOr<AlertsFile> LoadAlertsFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::InvalidArgument(path.string() + " is not a readable file" +
                                   (ec ? ": " + ec.message() : std::string()));
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return Status::InvalidArgument("cannot read " + path.string());
  auto parsed = ParseAlertsFile(text.str());
  if (!parsed.ok()) return parsed.status().WithContext(path.string());
  return parsed;
}

bool IsConfigFileName(std::string_view name) {
  for (const char* known : kConfigFileNames) {
    if (name == known) return true;
  }
  return false;
}

StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& model_dir) {
  // Messages name files relative to the repository (<model>/config.yaml):
  // they reach clients, who need not learn where the repository sits.
  const std::string dir_name = model_dir.filename().string();
  std::filesystem::path found;
  for (const char* name : kConfigFileNames) {
    const auto p = model_dir / name;
    std::error_code ec;
    const bool exists = std::filesystem::exists(p, ec);
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return Status::InvalidArgument("cannot read " + dir_name + "/" + name + ": " +
                                     ec.message());
    }
    if (!exists) continue;
    if (!found.empty()) {
      return Status::InvalidArgument("both " + found.filename().string() + " and " + name +
                                     " exist; keep one");
    }
    found = p;
  }
  if (found.empty()) {
    return Status::NotFound("no config.yaml, config.json or config.pbtxt in " + dir_name + "/");
  }
  const std::string shown = dir_name + "/" + found.filename().string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(found, ec)) {
    return Status::InvalidArgument(shown + " is not a regular file" +
                                   (ec ? ": " + ec.message() : std::string()));
  }
  std::ifstream in(found);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return Status::Internal("cannot read " + shown);
  StatusOr<ModelConfig> config = Status::Internal("unread");
  if (found.extension() == ".pbtxt") {
    // Written for Triton: read as it is, and what Berth ignores is said.
    auto triton = ParseTritonConfig(text.str());
    if (!triton.ok()) return triton.status().WithContext(shown);
    for (const std::string& warning : triton->warnings) {
      LOG_WARN("model config field not honoured", {{"file", shown}, {"warning", warning}});
    }
    config = std::move(triton->config);
  } else {
    config = ParseModelConfig(text.str());
  }
  if (!config.ok()) return config.status().WithContext(shown);
  if (config->name.empty()) config->name = dir_name;
  if (config->name != dir_name) {
    return Status::InvalidArgument(shown + ": name '" + config->name +
                                   "' differs from the directory name '" + dir_name + "'");
  }
  return config;
}

StatusOr<ModelSignature> ResolveSignature(const ModelConfig& config,
                                          const ModelSignature& from_file) {
  ModelSignature sig;
  RETURN_IF_ERROR(ReconcileList("input", config.inputs, from_file.inputs, true, &sig.inputs));
  RETURN_IF_ERROR(
      ReconcileList("output", config.outputs, from_file.outputs, false, &sig.outputs));
  // A misspelt name would leave the data it meant to hide in the payload log.
  for (const std::string& name : config.monitoring.redact) {
    auto named = [&](const TensorSpec& t) { return t.name == name; };
    if (std::none_of(sig.inputs.begin(), sig.inputs.end(), named) &&
        std::none_of(sig.outputs.begin(), sig.outputs.end(), named)) {
      return Status::InvalidArgument("monitoring.redact names '" + name +
                                     "', which is neither an input nor an output of the model");
    }
  }
  if (config.max_batch_size > 0) {
    for (const auto& s : sig.inputs) {
      if (s.shape.empty() || s.shape[0] >= 0) {
        return Status::InvalidArgument(
            "max_batch_size > 0 needs a variable first (batch) dimension, but input '" + s.name +
            "' has shape " + ShapeToString(s.shape));
      }
    }
  }
  return sig;
}

}  // namespace berth
