#include "server/http/v2_json_codec.h"


#include <algorithm>

#include "core/raw_tensor.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

using rapidjson::Value;

Status ParseParameters(const Value& v, const std::string& where, Parameters* out) {
  if (!v.IsObject()) return Status::InvalidArgument("'" + where + "' must be an object");
  for (const auto& m : v.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    const Value& x = m.value;
    if (x.IsBool()) {
      (*out)[key] = x.GetBool();
    } else if (x.IsInt64()) {
      (*out)[key] = x.GetInt64();
    } else if (x.IsNumber()) {
      (*out)[key] = x.GetDouble();
    } else if (x.IsString()) {
      (*out)[key] = std::string(x.GetString(), x.GetStringLength());
    } else {
      return Status::InvalidArgument("parameter '" + key + "' in '" + where +
                                     "' must be a boolean, number or string");
    }
  }
  return Status::Ok();
}

Status GetString(const Value& obj, const char* key, const std::string& where, std::string* out,
                 bool required = true) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) {
    return required ? Status::InvalidArgument(where + " needs a '" + key + "'") : Status::Ok();
  }
  if (!it->value.IsString()) {
    return Status::InvalidArgument("'" + std::string(key) + "' in " + where + " must be a string");
  }
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return Status::Ok();
}

Status ParseShape(const Value& obj, const std::string& where, std::vector<int64_t>* shape) {
  auto it = obj.FindMember("shape");
  if (it == obj.MemberEnd()) return Status::InvalidArgument(where + " needs a 'shape'");
  if (!it->value.IsArray()) return Status::InvalidArgument("'shape' in " + where + " must be an array");
  for (const auto& d : it->value.GetArray()) {
    if (!d.IsInt64() || d.GetInt64() < 0) {
      return Status::InvalidArgument("'shape' in " + where +
                                     " must hold non-negative integers");
    }
    shape->push_back(d.GetInt64());
  }
  if (ElementCount(*shape) < 0) return Status::InvalidArgument("'shape' in " + where + " is too large");
  return Status::Ok();
}

// Takes the next `size` bytes of the binary part for one input.
class BinaryCursor {
 public:
  explicit BinaryCursor(std::string_view binary) : binary_(binary) {}

  Status Take(const std::string& input, const Value& size, std::string_view* out) {
    if (!size.IsUint64()) {
      return Status::InvalidArgument("input '" + input +
                                     "': binary_data_size must be a non-negative integer");
    }
    const uint64_t n = size.GetUint64();
    if (n > binary_.size() - pos_) {
      return Status::InvalidArgument("input '" + input + "': binary_data_size " +
                                     std::to_string(n) + " runs past the end of the body (" +
                                     std::to_string(binary_.size() - pos_) + " bytes left)");
    }
    *out = binary_.substr(pos_, n);
    pos_ += n;
    return Status::Ok();
  }

  Status Finish() const {
    if (pos_ == binary_.size()) return Status::Ok();
    return Status::InvalidArgument(std::to_string(binary_.size() - pos_) +
                                   " bytes of binary data are not claimed by any input");
  }

 private:
  std::string_view binary_;
  size_t pos_ = 0;
};

Status ParseInput(const Value& in, size_t index, BinaryCursor* binary,
                  InferenceRequest* request) {
  const std::string where = "inputs[" + std::to_string(index) + "]";
  if (!in.IsObject()) return Status::InvalidArgument(where + " must be an object");
  std::string name, datatype;
  RETURN_IF_ERROR(GetString(in, "name", where, &name));
  RETURN_IF_ERROR(GetString(in, "datatype", where + " ('" + name + "')", &datatype));
  const DataType type = DataTypeFromName(datatype);
  if (type == DataType::kInvalid) {
    return Status::InvalidArgument("input '" + name + "' has unknown datatype '" + datatype + "'");
  }
  std::vector<int64_t> shape;
  RETURN_IF_ERROR(ParseShape(in, "input '" + name + "'", &shape));
  Tensor tensor(std::move(name), type, std::move(shape));
  if (auto p = in.FindMember("parameters"); p != in.MemberEnd()) {
    if (!p->value.IsObject()) {
      return Status::InvalidArgument("'parameters' of input '" + tensor.name() +
                                     "' must be an object");
    }
    if (auto size = p->value.FindMember("binary_data_size"); size != p->value.MemberEnd()) {
      if (in.HasMember("data")) {
        return Status::InvalidArgument("input '" + tensor.name() +
                                       "' has both 'data' and binary_data_size");
      }
      std::string_view raw;
      RETURN_IF_ERROR(binary->Take(tensor.name(), size->value, &raw));
      RETURN_IF_ERROR(FillTensorFromRaw(raw, &tensor));
      request->inputs.push_back(std::move(tensor));
      return Status::Ok();
    }
  }
  auto data = in.FindMember("data");
  if (data == in.MemberEnd()) {
    return Status::InvalidArgument("input '" + tensor.name() + "' needs 'data'");
  }
  RETURN_IF_ERROR(FillTensorFromJson(data->value, &tensor));
  request->inputs.push_back(std::move(tensor));
  return Status::Ok();
}

void WriteParameters(const Parameters& params, JsonWriter* w) {
  w->StartObject();
  for (const auto& [key, value] : params) {
    w->Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
    std::visit(
        [w](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) w->Bool(v);
          else if constexpr (std::is_same_v<T, int64_t>) w->Int64(v);
          else if constexpr (std::is_same_v<T, double>) w->Double(v);
          else w->String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
        },
        value);
  }
  w->EndObject();
}

void WriteString(JsonWriter* w, std::string_view s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteSpecs(const std::vector<TensorSpec>& specs, JsonWriter* w) {
  w->StartArray();
  for (const auto& s : specs) {
    w->StartObject();
    w->Key("name");
    WriteString(w, s.name);
    w->Key("datatype");
    WriteString(w, DataTypeName(s.datatype));
    w->Key("shape");
    w->StartArray();
    for (int64_t d : s.shape) w->Int64(d);
    w->EndArray();
    w->EndObject();
  }
  w->EndArray();
}

}  // namespace

StatusOr<std::unique_ptr<InferenceRequest>> ParseV2InferRequest(std::string_view json,
                                                                 std::string_view binary) {
  rapidjson::Document doc;
  RETURN_IF_ERROR(ParseJson(json, &doc));
  if (!doc.IsObject()) return Status::InvalidArgument("the request body must be a JSON object");
  auto request = std::make_unique<InferenceRequest>();
  RETURN_IF_ERROR(GetString(doc, "id", "the request", &request->id, false));
  if (auto p = doc.FindMember("parameters"); p != doc.MemberEnd()) {
    RETURN_IF_ERROR(ParseParameters(p->value, "parameters", &request->parameters));
  }
  auto inputs = doc.FindMember("inputs");
  if (inputs == doc.MemberEnd() || !inputs->value.IsArray()) {
    return Status::InvalidArgument("the request needs an 'inputs' array");
  }
  BinaryCursor cursor(binary);
  size_t i = 0;
  for (const auto& in : inputs->value.GetArray()) {
    RETURN_IF_ERROR(ParseInput(in, i++, &cursor, request.get()));
  }
  RETURN_IF_ERROR(cursor.Finish());
  if (auto outs = doc.FindMember("outputs"); outs != doc.MemberEnd()) {
    if (!outs->value.IsArray()) return Status::InvalidArgument("'outputs' must be an array");
    size_t j = 0;
    for (const auto& o : outs->value.GetArray()) {
      const std::string where = "outputs[" + std::to_string(j++) + "]";
      if (!o.IsObject()) return Status::InvalidArgument(where + " must be an object");
      RequestedOutput out;
      RETURN_IF_ERROR(GetString(o, "name", where, &out.name));
      if (auto p = o.FindMember("parameters"); p != o.MemberEnd()) {
        RETURN_IF_ERROR(ParseParameters(p->value, where + ".parameters", &out.parameters));
      }
      request->outputs.push_back(std::move(out));
    }
  }
  return request;
}

bool BinaryOutputs::Wants(const std::string& name) const {
  return all || std::find(names.begin(), names.end(), name) != names.end();
}

BinaryOutputs BinaryOutputsOf(const InferenceRequest& request) {
  auto is_true = [](const Parameters& p, const char* key) {
    auto it = p.find(key);
    return it != p.end() && std::holds_alternative<bool>(it->second) &&
           std::get<bool>(it->second);
  };
  BinaryOutputs out;
  out.all = is_true(request.parameters, "binary_data_output");
  for (const auto& o : request.outputs) {
    if (is_true(o.parameters, "binary_data")) out.names.push_back(o.name);
  }
  return out;
}

EncodedV2Response WriteV2InferResponse(const InferenceResponse& response,
                                       const BinaryOutputs& binary) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model_name");
  WriteString(&w, response.model_name);
  w.Key("model_version");
  WriteString(&w, response.model_version);
  if (!response.id.empty()) {
    w.Key("id");
    WriteString(&w, response.id);
  }
  if (!response.parameters.empty()) {
    w.Key("parameters");
    WriteParameters(response.parameters, &w);
  }
  w.Key("outputs");
  w.StartArray();
  for (const Tensor& t : response.outputs) {
    w.StartObject();
    w.Key("name");
    WriteString(&w, t.name());
    w.Key("datatype");
    WriteString(&w, DataTypeName(t.datatype()));
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape()) w.Int64(d);
    w.EndArray();
    if (binary.Wants(t.name())) {
      w.Key("parameters");
      w.StartObject();
      w.Key("binary_data_size");
      w.Uint64(RawByteSize(t));
      w.EndObject();
    } else {
      w.Key("data");
      WriteTensorData(t, &w);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  EncodedV2Response encoded;
  encoded.body.assign(buf.GetString(), buf.GetSize());
  encoded.json_size = encoded.body.size();
  if (binary.any()) {
    for (const Tensor& t : response.outputs) {
      if (binary.Wants(t.name())) AppendRaw(t, &encoded.body);
    }
  }
  return encoded;
}

std::string WriteV2ModelMetadata(const Model& model, const std::vector<int64_t>& versions) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("name");
  WriteString(&w, model.name);
  w.Key("versions");
  w.StartArray();
  for (int64_t v : versions) WriteString(&w, std::to_string(v));
  w.EndArray();
  w.Key("platform");
  WriteString(&w, model.platform);
  w.Key("inputs");
  WriteSpecs(model.signature.inputs, &w);
  w.Key("outputs");
  WriteSpecs(model.signature.outputs, &w);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string WriteV2ModelReady(std::string_view name, bool ready, std::string_view reason) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("name");
  WriteString(&w, name);
  w.Key("ready");
  w.Bool(ready);
  if (!ready) {
    w.Key("error");
    WriteString(&w, reason);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string WriteV2ServerMetadata(std::string_view name, std::string_view version,
                                  const std::vector<std::string>& extensions) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("name");
  WriteString(&w, name);
  w.Key("version");
  WriteString(&w, version);
  w.Key("extensions");
  w.StartArray();
  for (const auto& e : extensions) WriteString(&w, e);
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string WriteV2RepositoryIndex(const std::vector<ModelEntry>& models, bool ready_only) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartArray();
  for (const ModelEntry& m : models) {
    if (m.versions.empty() && !ready_only) {
      w.StartObject();
      w.Key("name");
      WriteString(&w, m.name);
      w.Key("state");
      WriteString(&w, ModelStateName(ModelState::kUnavailable));
      w.Key("reason");
      WriteString(&w, m.reason);
      w.EndObject();
    }
    for (const VersionEntry& v : m.versions) {
      if (ready_only && v.state != ModelState::kReady) continue;
      w.StartObject();
      w.Key("name");
      WriteString(&w, m.name);
      w.Key("version");
      WriteString(&w, std::to_string(v.version));
      w.Key("state");
      WriteString(&w, ModelStateName(v.state));
      w.Key("reason");
      WriteString(&w, v.reason);
      w.EndObject();
    }
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace berth::http
