#include "registry/triton_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string_view>

#include "core/float16.h"
#include "registry/triton_model_config.pb.h"

namespace berth {
namespace {

namespace pb = google::protobuf;

// Triton fields that Berth cannot honour and that change what a model
// answers if dropped: refused. Any other field Berth does not read is
// reported and ignored.
const std::set<std::string, std::less<>>& Refused() {
  static const std::set<std::string, std::less<>> fields = {
      "sequence_batching", "ensemble_scheduling", "batch_input", "batch_output",
      "model_transaction_policy", "cc_model_filenames", "model_operations"};
  return fields;
}

// Collects the parser's errors and the fields it skipped (its warnings name
// them: Message type "..." has no field named "x".).
class Collector final : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (error.empty()) error = At(line, column) + message;
  }
  void AddWarning(int line, pb::io::ColumnNumber column, const std::string& message) override {
    constexpr std::string_view kMarker = "has no field named \"";
    const size_t at = message.find(kMarker);
    if (at == std::string::npos) {
      warnings.push_back(At(line, column) + message);
      return;
    }
    const size_t begin = at + kMarker.size();
    const std::string field = message.substr(begin, message.find('"', begin) - begin);
    // A top-level field's message names the config itself.
    const bool top = message.find("\"berth.triton.ModelConfig\"") != std::string::npos;
    if (top && Refused().count(field)) {
      if (error.empty()) {
        error = At(line, column) + "'" + field + "' is not supported by Berth; remove it or "
                "serve this model with Triton";
      }
      return;
    }
    warnings.push_back(At(line, column) + "'" + field + "' is not supported by Berth and is "
                       "ignored");
  }

  std::string error;
  std::vector<std::string> warnings;

 private:
  static std::string At(int line, int column) {
    return "line " + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": ";
  }
};

StatusOr<DataType> FromTriton(triton::DataType t, const std::string& tensor) {
  switch (t) {
    case triton::TYPE_BOOL: return DataType::kBool;
    case triton::TYPE_UINT8: return DataType::kUint8;
    case triton::TYPE_UINT16: return DataType::kUint16;
    case triton::TYPE_UINT32: return DataType::kUint32;
    case triton::TYPE_UINT64: return DataType::kUint64;
    case triton::TYPE_INT8: return DataType::kInt8;
    case triton::TYPE_INT16: return DataType::kInt16;
    case triton::TYPE_INT32: return DataType::kInt32;
    case triton::TYPE_INT64: return DataType::kInt64;
    case triton::TYPE_FP16: return DataType::kFp16;
    case triton::TYPE_FP32: return DataType::kFp32;
    case triton::TYPE_FP64: return DataType::kFp64;
    case triton::TYPE_STRING: return DataType::kBytes;
    case triton::TYPE_BF16:
      return Status::InvalidArgument("'" + tensor + "': TYPE_BF16 is not supported by Berth");
    default: break;
  }
  return Status::InvalidArgument("'" + tensor + "' needs a data_type");
}

// Triton's dims leave the batch dimension out when the model batches.
std::vector<int64_t> Shape(const pb::RepeatedField<int64_t>& dims, bool batching) {
  std::vector<int64_t> shape;
  if (batching) shape.push_back(-1);
  shape.insert(shape.end(), dims.begin(), dims.end());
  return shape;
}

Status ReadThreads(const triton::ModelConfig& in, ModelConfig* out,
                   std::vector<std::string>* warnings) {
  for (const auto& [key, value] : in.parameters()) {
    int* target = key == "intra_op_thread_count"   ? &out->onnxruntime.intra_op_threads
                  : key == "inter_op_thread_count" ? &out->onnxruntime.inter_op_threads
                                                   : nullptr;
    if (key == kFeatureNamesParameter) continue;  // the registry's, written by ToTritonConfig
    if (target == nullptr) {
      warnings->push_back("parameter '" + key + "' is not supported by Berth and is ignored");
      continue;
    }
    try {
      size_t used = 0;
      const int n = std::stoi(value.string_value(), &used);
      if (used != value.string_value().size() || n < 0) throw std::invalid_argument(key);
      *target = n;
    } catch (const std::exception&) {
      return Status::InvalidArgument("parameter '" + key + "' must be a non-negative integer, "
                                     "not '" + value.string_value() + "'");
    }
  }
  return Status::Ok();
}

// Fills `t` (allocated, numeric) with values any model reads without
// overflow: floats in [0, 1), integers in [0, 100), booleans either way.
// Seeded, so a version warms up with the same values at every load.
void FillRandom(Tensor* t) {
  std::mt19937 gen(0x5eed);
  std::uniform_real_distribution<float> real(0.f, 1.f);
  std::uniform_int_distribution<int> small(0, 99);
  std::byte* out = t->bytes().data();
  const size_t size = DataTypeByteSize(t->datatype());
  const auto put = [&](auto value) {
    std::memcpy(out, &value, sizeof(value));
    out += size;
  };
  for (int64_t i = 0; i < t->element_count(); ++i) {
    switch (t->datatype()) {
      case DataType::kBool: put(static_cast<uint8_t>(small(gen) % 2)); break;
      case DataType::kUint8: put(static_cast<uint8_t>(small(gen))); break;
      case DataType::kUint16: put(static_cast<uint16_t>(small(gen))); break;
      case DataType::kUint32: put(static_cast<uint32_t>(small(gen))); break;
      case DataType::kUint64: put(static_cast<uint64_t>(small(gen))); break;
      case DataType::kInt8: put(static_cast<int8_t>(small(gen))); break;
      case DataType::kInt16: put(static_cast<int16_t>(small(gen))); break;
      case DataType::kInt32: put(static_cast<int32_t>(small(gen))); break;
      case DataType::kInt64: put(static_cast<int64_t>(small(gen))); break;
      case DataType::kFp16: put(FloatToHalf(real(gen))); break;
      case DataType::kFp32: put(real(gen)); break;
      case DataType::kFp64: put(static_cast<double>(real(gen))); break;
      case DataType::kBytes:
      case DataType::kInvalid: return;
    }
  }
}

// Triton's model_warmup as Berth's warm-up request: one sample, its inputs
// generated (zero_data, random_data) with shape [batch_size] + dims for a
// batching model, run `count` times (Triton's 0 means once). Data read from
// files (input_data_file) is refused: the repository's warmup folder is not
// read.
Status ReadWarmup(const triton::ModelConfig& in, ModelConfig* out) {
  if (in.model_warmup_size() == 0) return Status::Ok();
  if (in.model_warmup_size() > 1) {
    return Status::InvalidArgument(
        "model_warmup has " + std::to_string(in.model_warmup_size()) +
        " samples; Berth runs one warm-up request per version: keep one sample");
  }
  const triton::ModelWarmup& w = in.model_warmup(0);
  const std::string where = "model_warmup '" + w.name() + "'";
  const bool batching = out->max_batch_size > 0;
  if (batching && (w.batch_size() < 1 || w.batch_size() > out->max_batch_size)) {
    return Status::InvalidArgument(where + ": batch_size must be from 1 to max_batch_size (" +
                                   std::to_string(out->max_batch_size) + "), not " +
                                   std::to_string(w.batch_size()));
  }
  if (!batching && w.batch_size() > 1) {
    return Status::InvalidArgument(where + ": batch_size must be 1 for a model without "
                                   "batching (max_batch_size 0), not " +
                                   std::to_string(w.batch_size()));
  }
  if (w.count() > static_cast<uint32_t>(kMaxWarmupCount)) {
    return Status::InvalidArgument(where + ": count must be at most " +
                                   std::to_string(kMaxWarmupCount));
  }
  if (w.inputs().empty()) return Status::InvalidArgument(where + " has no inputs");
  WarmupConfig warmup;
  warmup.count = std::max<int>(1, static_cast<int>(w.count()));
  // By name, so that the request does not depend on the map's order.
  const std::map<std::string, triton::ModelWarmup::Input> inputs(w.inputs().begin(),
                                                                 w.inputs().end());
  for (const auto& [name, input] : inputs) {
    const std::string at = where + ": input '" + name + "'";
    using Data = triton::ModelWarmup::Input;
    if (input.input_data_type_case() == Data::kInputDataFile) {
      return Status::InvalidArgument(at + ": input_data_file is not supported by Berth; use "
                                     "zero_data or random_data, or give the values in "
                                     "config.yaml's warmup.inputs");
    }
    if (input.input_data_type_case() == Data::INPUT_DATA_TYPE_NOT_SET) {
      return Status::InvalidArgument(at + " needs zero_data or random_data");
    }
    auto type = FromTriton(input.data_type(), name);
    if (!type.ok()) return Status::InvalidArgument(where + ": " + type.status().message());
    std::vector<int64_t> shape;
    if (batching) shape.push_back(w.batch_size());
    for (int64_t d : input.dims()) {
      if (d < 1) {
        return Status::InvalidArgument(at + ": dims must be fully known (each >= 1): the "
                                       "warm-up request sends exactly this shape");
      }
      shape.push_back(d);
    }
    const int64_t element = *type == DataType::kBytes
                                ? static_cast<int64_t>(sizeof(std::string))
                                : static_cast<int64_t>(DataTypeByteSize(*type));
    int64_t count = 1;
    for (int64_t d : shape) {
      if (d > kMaxWarmupInputBytes / element / count) {
        return Status::InvalidArgument(at + " is over the warm-up limit of " +
                                       std::to_string(kMaxWarmupInputBytes >> 20) +
                                       " MiB");
      }
      count *= d;
    }
    Tensor tensor(name, *type, std::move(shape));
    RETURN_IF_ERROR(tensor.Allocate());
    // random_data for strings: empty strings, as zero_data (random bytes are
    // seldom a value a string input takes).
    if (input.random_data() && *type != DataType::kBytes) FillRandom(&tensor);
    warmup.inputs.push_back(std::move(tensor));
  }
  out->warmup = std::move(warmup);
  return Status::Ok();
}

// `field [ {...} ]` written without a colon, as Triton's configs usually are,
// with a colon: protobuf's parser (3.21) can skip an unknown field's list of
// messages only in that form. Quoted strings and # comments are left alone.
std::string ColonBeforeLists(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 16);
  char quote = 0;
  bool comment = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (comment) {
      comment = c != '\n';
    } else if (quote != 0) {
      if (c == '\\' && i + 1 < text.size()) {
        out.push_back(c);
        out.push_back(text[++i]);
        continue;
      }
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#') {
      comment = true;
    } else if (c == '[') {
      size_t j = out.size();
      while (j > 0 && std::isspace(static_cast<unsigned char>(out[j - 1]))) --j;
      if (j > 0 && (std::isalnum(static_cast<unsigned char>(out[j - 1])) || out[j - 1] == '_')) {
        out.push_back(':');
      }
    }
    out.push_back(c);
  }
  return out;
}

triton::DataType ToTriton(DataType t) {
  switch (t) {
    case DataType::kBool: return triton::TYPE_BOOL;
    case DataType::kUint8: return triton::TYPE_UINT8;
    case DataType::kUint16: return triton::TYPE_UINT16;
    case DataType::kUint32: return triton::TYPE_UINT32;
    case DataType::kUint64: return triton::TYPE_UINT64;
    case DataType::kInt8: return triton::TYPE_INT8;
    case DataType::kInt16: return triton::TYPE_INT16;
    case DataType::kInt32: return triton::TYPE_INT32;
    case DataType::kInt64: return triton::TYPE_INT64;
    case DataType::kFp16: return triton::TYPE_FP16;
    case DataType::kFp32: return triton::TYPE_FP32;
    case DataType::kFp64: return triton::TYPE_FP64;
    case DataType::kBytes: return triton::TYPE_STRING;
    case DataType::kInvalid: break;
  }
  return triton::TYPE_INVALID;
}

template <typename Tensor>
void SetDims(const TensorSpec& spec, bool batching, Tensor* out) {
  out->set_name(spec.name);
  out->set_data_type(ToTriton(spec.datatype));
  const size_t skip = batching && !spec.shape.empty() ? 1 : 0;
  for (size_t i = skip; i < spec.shape.size(); ++i) out->add_dims(spec.shape[i]);
}

}  // namespace

triton::ModelConfig ToTritonConfig(const Model& model) {
  const ModelConfig& c = model.config;
  triton::ModelConfig out;
  out.set_name(model.name);
  out.set_platform("onnxruntime_onnx");
  out.set_backend("onnxruntime");
  out.set_default_model_filename("model.onnx");
  out.set_max_batch_size(static_cast<int32_t>(c.max_batch_size));
  const bool batching = c.max_batch_size > 0;
  auto* policy = out.mutable_version_policy();
  switch (c.version_policy.kind) {
    case VersionPolicy::Kind::kLatest:
      policy->mutable_latest()->set_num_versions(static_cast<uint32_t>(c.version_policy.latest));
      break;
    case VersionPolicy::Kind::kAll: policy->mutable_all(); break;
    case VersionPolicy::Kind::kSpecific:
      for (int64_t v : c.version_policy.specific) policy->mutable_specific()->add_versions(v);
      break;
  }
  for (const TensorSpec& s : model.signature.inputs) SetDims(s, batching, out.add_input());
  for (const TensorSpec& s : model.signature.outputs) SetDims(s, batching, out.add_output());
  if (c.dynamic_batching) {
    auto* d = out.mutable_dynamic_batching();
    for (int64_t size : c.dynamic_batching->preferred_batch_sizes) {
      d->add_preferred_batch_size(static_cast<int32_t>(size));
    }
    d->set_max_queue_delay_microseconds(
        static_cast<uint64_t>(c.dynamic_batching->max_queue_delay_microseconds));
    d->mutable_default_queue_policy()->set_max_queue_size(static_cast<uint32_t>(
        std::min<int64_t>(c.dynamic_batching->max_queue_size, UINT32_MAX)));
  }
  auto* group = out.add_instance_group();
  group->set_name(model.name);
  group->set_kind(triton::ModelInstanceGroup::KIND_CPU);
  group->set_count(c.instance_count);
  auto& parameters = *out.mutable_parameters();
  parameters["intra_op_thread_count"].set_string_value(std::to_string(c.onnxruntime.intra_op_threads));
  parameters["inter_op_thread_count"].set_string_value(std::to_string(c.onnxruntime.inter_op_threads));
  return out;
}

triton::ModelConfig ToTritonConfig(const Model& model, RegistryStore* store) {
  triton::ModelConfig out = ToTritonConfig(model);
  if (store == nullptr) return out;
  auto versions = store->Versions(model.name);
  if (!versions.ok()) return out;  // unknown order: the parameter's absence says so
  std::string names = "[]";
  for (const VersionRecord& v : *versions) {
    if (v.version != model.version) continue;
    // Checked when it was stored (CheckVersionMetadata): an array of strings.
    rapidjson::Document doc;
    doc.Parse(v.metadata_json.data(), v.metadata_json.size());
    if (doc.HasParseError() || !doc.IsObject()) break;
    auto it = doc.FindMember("feature_names");
    if (it == doc.MemberEnd() || !it->value.IsArray()) break;
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    it->value.Accept(writer);
    names.assign(buffer.GetString(), buffer.GetSize());
    break;
  }
  (*out.mutable_parameters())[kFeatureNamesParameter].set_string_value(names);
  return out;
}

StatusOr<TritonConfig> ParseTritonConfig(const std::string& text) {
  triton::ModelConfig in;
  Collector collector;
  pb::TextFormat::Parser parser;
  parser.AllowUnknownField(true);
  parser.RecordErrorsTo(&collector);
  const bool parsed = parser.ParseFromString(ColonBeforeLists(text), &in);
  if (!collector.error.empty()) return Status::InvalidArgument(collector.error);
  if (!parsed) return Status::InvalidArgument("not a valid Triton model configuration");

  TritonConfig result;
  result.warnings = std::move(collector.warnings);
  ModelConfig& out = result.config;
  out.name = in.name();
  const bool onnx_platform = in.platform().empty() || in.platform() == "onnxruntime_onnx";
  const bool onnx_backend = in.backend().empty() || in.backend() == "onnxruntime";
  if (!onnx_platform || !onnx_backend) {
    const std::string& what = !onnx_platform ? in.platform() : in.backend();
    return Status::InvalidArgument(
        std::string(!onnx_platform ? "platform" : "backend") + " '" + what +
        "' is not supported: Berth serves ONNX models (platform \"onnxruntime_onnx\" or "
        "backend \"onnxruntime\"); convert the model to ONNX");
  }
  out.backend = "onnx";
  if (!in.default_model_filename().empty() && in.default_model_filename() != "model.onnx") {
    return Status::InvalidArgument("default_model_filename '" + in.default_model_filename() +
                                   "' is not supported: name each version's file model.onnx");
  }
  if (in.max_batch_size() < 0) return Status::InvalidArgument("max_batch_size must be >= 0");
  out.max_batch_size = in.max_batch_size();
  const bool batching = out.max_batch_size > 0;

  for (const auto& i : in.input()) {
    if (i.has_reshape() || i.is_shape_tensor() || i.allow_ragged_batch()) {
      return Status::InvalidArgument("input '" + i.name() + "': reshape, is_shape_tensor and "
                                     "allow_ragged_batch are not supported by Berth");
    }
    if (i.optional()) {
      result.warnings.push_back("input '" + i.name() + "': optional is not supported by Berth; "
                                "the input is required");
    }
    if (i.format() != triton::ModelInput::FORMAT_NONE) {
      result.warnings.push_back("input '" + i.name() + "': format is ignored");
    }
    ASSIGN_OR_RETURN(DataType type, FromTriton(i.data_type(), i.name()));
    out.inputs.push_back({i.name(), type, Shape(i.dims(), batching)});
  }
  for (const auto& o : in.output()) {
    if (o.has_reshape() || o.is_shape_tensor()) {
      return Status::InvalidArgument("output '" + o.name() + "': reshape and is_shape_tensor "
                                     "are not supported by Berth");
    }
    if (!o.label_filename().empty()) {
      result.warnings.push_back("output '" + o.name() + "': label_filename is ignored");
    }
    ASSIGN_OR_RETURN(DataType type, FromTriton(o.data_type(), o.name()));
    out.outputs.push_back({o.name(), type, Shape(o.dims(), batching)});
  }

  if (in.has_version_policy()) {
    const auto& p = in.version_policy();
    if (p.has_all()) {
      out.version_policy.kind = VersionPolicy::Kind::kAll;
    } else if (p.has_specific()) {
      out.version_policy.kind = VersionPolicy::Kind::kSpecific;
      out.version_policy.specific.assign(p.specific().versions().begin(),
                                         p.specific().versions().end());
    } else if (p.has_latest()) {
      out.version_policy.latest = std::max<int64_t>(1, p.latest().num_versions());
    }
  }

  if (in.has_dynamic_batching()) {
    if (!batching) {
      return Status::InvalidArgument("dynamic_batching needs max_batch_size > 0");
    }
    const auto& d = in.dynamic_batching();
    DynamicBatchingConfig batcher;
    batcher.preferred_batch_sizes.assign(d.preferred_batch_size().begin(),
                                         d.preferred_batch_size().end());
    batcher.max_queue_delay_microseconds = static_cast<int64_t>(d.max_queue_delay_microseconds());
    if (d.priority_levels() > 0) {
      result.warnings.push_back("dynamic_batching: priority levels are ignored");
    }
    if (d.has_default_queue_policy()) {
      const auto& q = d.default_queue_policy();
      // Triton's 0 is "no limit"; Berth's queue is always bounded.
      if (q.max_queue_size() > 0) batcher.max_queue_size = q.max_queue_size();
      if (q.default_timeout_microseconds() > 0 ||
          q.timeout_action() != triton::ModelQueuePolicy::REJECT) {
        result.warnings.push_back(
            "dynamic_batching.default_queue_policy: only max_queue_size is honoured; a queued "
            "request's deadline comes from --request-timeout, the gRPC deadline or its "
            "'timeout' parameter, and an expired one is always rejected");
      }
    }
    out.dynamic_batching = batcher;
  }

  int instances = 0;
  for (const auto& g : in.instance_group()) {
    if (g.kind() == triton::ModelInstanceGroup::KIND_GPU || g.gpus_size() > 0) {
      return Status::InvalidArgument("instance_group '" + g.name() +
                                     "' asks for GPUs; this Berth build runs on CPU only "
                                     "(use kind: KIND_CPU)");
    }
    instances += std::max(1, g.count());
  }
  if (instances > 0) out.instance_count = instances;
  RETURN_IF_ERROR(ReadThreads(in, &out, &result.warnings));
  RETURN_IF_ERROR(ReadWarmup(in, &out));
  return result;
}

StatusOr<TritonConfig> ParseTritonConfigJson(const std::string& json, std::string* text_out) {
  triton::ModelConfig message;
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;  // a field Berth's schema lacks is named, not dropped
  const auto parsed = pb::util::JsonStringToMessage(json, &message, options);
  if (!parsed.ok()) {
    return Status::InvalidArgument("not a valid Triton model configuration in JSON: " +
                                   std::string(parsed.message()));
  }
  // Through the text form, so that the JSON form gets every check and
  // warning a config.pbtxt gets.
  std::string text;
  if (!pb::TextFormat::PrintToString(message, &text)) {
    return Status::Internal("cannot print the model configuration as text");
  }
  if (text_out != nullptr) *text_out = text;
  return ParseTritonConfig(text);
}

}  // namespace berth
