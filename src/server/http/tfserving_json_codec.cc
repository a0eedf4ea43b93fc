#include "server/http/tfserving_json_codec.h"

#include <algorithm>

#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

using rapidjson::Value;

constexpr std::string_view kDefaultSignature = "serving_default";

StatusOr<Tensor> ColumnTensor(const Value& value, const TensorSpec& spec, const std::string& what) {
  ASSIGN_OR_RETURN(auto shape,
                   ResolveJsonShape(value, spec.shape,
                                    what + " (input '" + spec.name + "' is " +
                                        std::string(DataTypeName(spec.datatype)) + " " +
                                        ShapeToString(spec.shape) + ")"));
  Tensor tensor(spec.name, spec.datatype, std::move(shape));
  RETURN_IF_ERROR(FillTensorFromJson(value, &tensor));
  return tensor;
}

// The columnar format: one input's value, or {input name: value}.
StatusOr<std::vector<Tensor>> TensorsFromColumns(const Value& columns,
                                                 const std::vector<TensorSpec>& inputs) {
  std::vector<Tensor> tensors;
  if (!columns.IsObject()) {
    if (inputs.size() != 1) {
      return Status::InvalidArgument("the model has " + std::to_string(inputs.size()) +
                                     " inputs (" + QuotedNames(inputs) +
                                     "), so 'inputs' must be an object {input name: value}");
    }
    ASSIGN_OR_RETURN(auto tensor, ColumnTensor(columns, inputs[0], "'inputs'"));
    tensors.push_back(std::move(tensor));
    return tensors;
  }
  for (const auto& m : columns.GetObject()) {
    const std::string_view name(m.name.GetString(), m.name.GetStringLength());
    const bool known = std::any_of(inputs.begin(), inputs.end(),
                                   [&](const TensorSpec& s) { return s.name == name; });
    if (!known) {
      return Status::InvalidArgument("'inputs' has '" + std::string(name) +
                                     "', which is not an input of the model (inputs: " +
                                     QuotedNames(inputs) + ")");
    }
  }
  if (columns.MemberCount() > inputs.size()) {
    return Status::InvalidArgument("'inputs' names an input more than once");
  }
  for (const TensorSpec& spec : inputs) {
    auto it = columns.FindMember(spec.name.c_str());
    if (it == columns.MemberEnd()) {
      return Status::InvalidArgument("'inputs' lacks input '" + spec.name + "' (" +
                                     std::string(DataTypeName(spec.datatype)) + " " +
                                     ShapeToString(spec.shape) + ")");
    }
    ASSIGN_OR_RETURN(auto tensor, ColumnTensor(it->value, spec, "'inputs'['" + spec.name + "']"));
    tensors.push_back(std::move(tensor));
  }
  return tensors;
}

const char* StateName(ModelState state) {
  switch (state) {
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "AVAILABLE";
    case ModelState::kUnloading: return "UNLOADING";
    case ModelState::kUnavailable: return "END";
  }
  return "UNKNOWN";
}

void WriteString(JsonWriter* w, std::string_view s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

}  // namespace

StatusOr<TfServingPredictRequest> ParseTfServingPredictRequest(
    std::string_view body, const std::vector<TensorSpec>& inputs) {
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(body, &doc));
  if (!doc.IsObject()) return Status::InvalidArgument("the request body must be a JSON object");
  RETURN_IF_ERROR(CheckMembers(doc, {"signature_name", "instances", "inputs"}, "the request"));
  if (auto sig = doc.FindMember("signature_name"); sig != doc.MemberEnd()) {
    if (!sig->value.IsString()) return Status::InvalidArgument("'signature_name' must be a string");
    const std::string_view name(sig->value.GetString(), sig->value.GetStringLength());
    if (name != kDefaultSignature) {
      return Status::InvalidArgument("unknown signature '" + std::string(name) +
                                     "': the model has only '" + std::string(kDefaultSignature) +
                                     "'");
    }
  }
  const auto instances = doc.FindMember("instances");
  const auto columns = doc.FindMember("inputs");
  const bool row = instances != doc.MemberEnd();
  if (row == (columns != doc.MemberEnd())) {
    return Status::InvalidArgument(
        "the request needs either 'instances' (row format) or 'inputs' (columnar format), not " +
        std::string(row ? "both" : "neither"));
  }
  TfServingPredictRequest out;
  out.request = std::make_unique<InferenceRequest>();
  if (row) {
    ASSIGN_OR_RETURN(out.request->inputs,
                     TensorsFromRows(instances->value, inputs, RowForm::kAuto, "instances"));
    out.format = TfServingFormat::kRow;
    out.rows = instances->value.Size();
  } else {
    ASSIGN_OR_RETURN(out.request->inputs, TensorsFromColumns(columns->value, inputs));
    out.format = TfServingFormat::kColumnar;
  }
  return out;
}

StatusOr<std::string> WriteTfServingPredictResponse(const InferenceResponse& response,
                                                    TfServingFormat format, int64_t rows) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  if (format == TfServingFormat::kRow) {
    w.Key("predictions");
    RETURN_IF_ERROR(WriteRowPredictions(response.outputs, rows, OutputNames::kUnlessSingle, &w));
  } else {
    w.Key("outputs");
    if (response.outputs.size() == 1) {
      WriteTensorNested(response.outputs[0], &w);
    } else {
      w.StartObject();
      for (const Tensor& t : response.outputs) {
        WriteString(&w, t.name());
        WriteTensorNested(t, &w);
      }
      w.EndObject();
    }
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string WriteTfServingModelStatus(const std::vector<VersionEntry>& versions) {
  std::vector<const VersionEntry*> order;
  for (const auto& v : versions) order.push_back(&v);
  std::sort(order.begin(), order.end(),
            [](const VersionEntry* a, const VersionEntry* b) { return a->version > b->version; });
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model_version_status");
  w.StartArray();
  for (const VersionEntry* v : order) {
    const bool failed = v->state == ModelState::kUnavailable;
    w.StartObject();
    w.Key("version");
    WriteString(&w, std::to_string(v->version));
    w.Key("state");
    w.String(StateName(v->state));
    w.Key("status");
    w.StartObject();
    w.Key("error_code");
    w.String(failed ? "UNKNOWN" : "OK");
    w.Key("error_message");
    WriteString(&w, failed ? std::string_view(v->reason) : std::string_view());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace berth::http
