#include "server/http/tfserving_api.h"

#include <string>
#include <utility>

#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

constexpr std::string_view kDefaultSignature = "serving_default";

// TensorFlow's DataType enum names (types.proto).
const char* TfDataType(DataType type) {
  switch (type) {
    case DataType::kBool: return "DT_BOOL";
    case DataType::kUint8: return "DT_UINT8";
    case DataType::kUint16: return "DT_UINT16";
    case DataType::kUint32: return "DT_UINT32";
    case DataType::kUint64: return "DT_UINT64";
    case DataType::kInt8: return "DT_INT8";
    case DataType::kInt16: return "DT_INT16";
    case DataType::kInt32: return "DT_INT32";
    case DataType::kInt64: return "DT_INT64";
    case DataType::kFp16: return "DT_HALF";
    case DataType::kFp32: return "DT_FLOAT";
    case DataType::kFp64: return "DT_DOUBLE";
    case DataType::kBytes: return "DT_STRING";
    case DataType::kInvalid: break;
  }
  return "DT_INVALID";
}

void WriteTensorInfos(const std::vector<TensorSpec>& specs, JsonWriter* w) {
  w->StartObject();
  for (const TensorSpec& s : specs) {
    w->Key(s.name.data(), static_cast<rapidjson::SizeType>(s.name.size()));
    w->StartObject();
    w->Key("dtype");
    w->String(TfDataType(s.datatype));
    w->Key("tensor_shape");
    w->StartObject();
    w->Key("dim");
    w->StartArray();
    for (int64_t d : s.shape) {
      w->StartObject();
      w->Key("size");  // int64 in proto3 JSON: a string
      WriteJsonString(w, std::to_string(d));
      w->Key("name");
      w->String("");
      w->EndObject();
    }
    w->EndArray();
    w->Key("unknown_rank");
    w->Bool(false);
    w->EndObject();
    w->Key("name");
    WriteJsonString(w, s.name);
    w->EndObject();
  }
  w->EndObject();
}

bool IsFloat(DataType t) {
  return t == DataType::kFp16 || t == DataType::kFp32 || t == DataType::kFp64;
}

bool IsNumeric(DataType t) { return t != DataType::kBytes && t != DataType::kInvalid; }

// Elements per row of `t` (a [rows, ...] tensor), or -1 if it has no batch
// dimension of `rows`.
int64_t PerRow(const Tensor& t, int64_t rows) {
  if (t.shape().empty() || t.shape()[0] != rows || rows == 0) return -1;
  return t.element_count() / rows;
}

}  // namespace

std::string WriteTfServingMetadata(const Model& model) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model_spec");
  w.StartObject();
  w.Key("name");
  WriteJsonString(&w, model.name);
  w.Key("signature_name");
  w.String("");
  w.Key("version");
  WriteJsonString(&w, std::to_string(model.version));
  w.EndObject();
  w.Key("metadata");
  w.StartObject();
  w.Key("signature_def");
  w.StartObject();
  w.Key("signature_def");
  w.StartObject();
  w.Key(kDefaultSignature.data(), static_cast<rapidjson::SizeType>(kDefaultSignature.size()));
  w.StartObject();
  w.Key("inputs");
  WriteTensorInfos(model.signature.inputs, &w);
  w.Key("outputs");
  WriteTensorInfos(model.signature.outputs, &w);
  w.Key("method_name");
  w.String("tensorflow/serving/predict");
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

StatusOr<TfServingExamples> ParseTfServingExamples(std::string_view body,
                                                   const std::vector<TensorSpec>& inputs) {
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) return Status::InvalidArgument("the request body must be a JSON object");
  RETURN_IF_ERROR(CheckMembers(doc, {"signature_name", "context", "examples"}, "the request"));
  if (auto s = doc.FindMember("signature_name"); s != doc.MemberEnd()) {
    if (!s->value.IsString()) return Status::InvalidArgument("'signature_name' must be a string");
    const std::string_view name(s->value.GetString(), s->value.GetStringLength());
    if (!name.empty() && name != kDefaultSignature) {
      return Status::InvalidArgument("unknown signature '" + std::string(name) +
                                     "': the model has only '" + std::string(kDefaultSignature) +
                                     "'");
    }
  }
  auto examples = doc.FindMember("examples");
  if (examples == doc.MemberEnd() || !examples->value.IsArray()) {
    return Status::InvalidArgument("the request needs an 'examples' array");
  }
  rapidjson::Value* context = nullptr;
  if (auto c = doc.FindMember("context"); c != doc.MemberEnd()) {
    if (!c->value.IsObject()) {
      return Status::InvalidArgument("'context' must be an object of features");
    }
    context = &c->value;
  }
  auto& allocator = doc.GetAllocator();
  rapidjson::SizeType index = 0;
  for (rapidjson::Value& example : examples->value.GetArray()) {
    if (!example.IsObject()) {
      return Status::InvalidArgument("examples[" + std::to_string(index) +
                                     "] must be an object of features");
    }
    if (context != nullptr) {
      for (const auto& feature : context->GetObject()) {
        if (example.HasMember(feature.name)) {
          return Status::InvalidArgument(
              "feature '" + std::string(feature.name.GetString(), feature.name.GetStringLength()) +
              "' is in both examples[" + std::to_string(index) + "] and the context");
        }
        example.AddMember(rapidjson::Value(feature.name, allocator),
                          rapidjson::Value(feature.value, allocator), allocator);
      }
    }
    ++index;
  }
  ASSIGN_OR_RETURN(std::vector<Tensor> tensors,
                   TensorsFromRows(examples->value, inputs, RowForm::kNamed, "examples"));
  TfServingExamples out;
  out.rows = examples->value.Size();
  out.request = std::make_unique<InferenceRequest>();
  out.request->protocol = Protocol::kTfServing;
  out.request->inputs = std::move(tensors);
  return out;
}

StatusOr<std::string> WriteTfServingClassifyResponse(const InferenceResponse& response,
                                                     int64_t rows) {
  const Tensor* scores = nullptr;
  int64_t classes = 0;
  for (const Tensor& t : response.outputs) {
    const int64_t per_row = PerRow(t, rows);
    if (IsFloat(t.datatype()) && t.shape().size() == 2 && per_row >= 2) {
      scores = &t;
      classes = per_row;
      break;
    }
  }
  if (scores == nullptr) {
    return Status::FailedPrecondition(
        "the model has no class scores to classify with: :classify needs a floating-point "
        "output of shape [-1, classes]; use :predict");
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("result");
  w.StartArray();
  for (int64_t r = 0; r < rows; ++r) {
    w.StartArray();
    for (int64_t c = 0; c < classes; ++c) {
      w.StartArray();
      WriteJsonString(&w, std::to_string(c));
      WriteTensorElement(*scores, r * classes + c, &w);
      w.EndArray();
    }
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

StatusOr<std::string> WriteTfServingRegressResponse(const InferenceResponse& response,
                                                    int64_t rows) {
  const Tensor* values = nullptr;
  for (const Tensor& t : response.outputs) {
    if (IsNumeric(t.datatype()) && PerRow(t, rows) == 1) {
      values = &t;
      break;
    }
  }
  if (values == nullptr) {
    return Status::FailedPrecondition(
        "the model has no output with one value per example to regress with; use :predict");
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("result");
  w.StartArray();
  for (int64_t r = 0; r < rows; ++r) WriteTensorElement(*values, r, &w);
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace berth::http
