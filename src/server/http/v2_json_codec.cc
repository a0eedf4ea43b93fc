#include "server/http/v2_json_codec.h"

#include <algorithm>
#include <limits>
#include <variant>

#include "core/raw_tensor.h"
#include "core/request_validator.h"
#include "core/shared_memory_io.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

// Takes the next `size` bytes of the binary part for one input.
class BinaryCursor {
 public:
  explicit BinaryCursor(std::string_view binary) : binary_(binary) {}

  Status Take(const std::string& input, uint64_t n, std::string_view* out) {
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

// One JSON event, as V2RequestReader dispatches it.
struct Event {
  enum Type {
    kNull, kBool, kInt, kUint, kDouble, kString,  // values
    kStartObject, kStartArray,                    // values that open
    kKey, kEndObject, kEndArray,
  } type;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string_view s;

  explicit Event(Type t) : type(t) {}
  bool opens() const { return type == kStartObject || type == kStartArray; }
};

// Reads a v2 infer request from ReadJson's events without building a
// document: each input's `data` goes straight into its tensor through a
// JsonTensorBuilder (KServe v2 nesting). The members of an input may come in
// any order: when `data` comes before the name, datatype or shape it is
// skipped, its extent in the body remembered, and read again once the input
// object ends, so nothing is staged.
//
// Errors do not stop the reading (a malformed document reports that
// instead, as the tree parser did): the first one is kept, and later events
// are only read past. The checks of one input run when its object ends, in
// the order of the messages' documented precedence (name, datatype, shape,
// parameters, data).
class V2RequestReader final : public JsonHandler {
 public:
  V2RequestReader(std::string_view json, std::string_view binary)
      : json_(json), cursor_(binary), request_(std::make_unique<InferenceRequest>()) {
    request_->protocol = Protocol::kRest;
    stack_.reserve(8);  // a request nests five deep
  }

  // The elements of a `data` list, the bulk of a large request, go straight
  // to the builder.
  bool Null() override { return On(Event(Event::kNull)); }
  bool Bool(bool b) override {
    if (InDataList()) return input_.builder->Bool(b);
    Event e(Event::kBool);
    e.b = b;
    return On(e);
  }
  bool Int64(int64_t i) override {
    if (InDataList()) return input_.builder->Int64(i);
    Event e(Event::kInt);
    e.i = i;
    return On(e);
  }
  // An integer that fits int64 is an int64, as RapidJSON's IsInt64() has it.
  bool Uint64(uint64_t u) override {
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Int64(static_cast<int64_t>(u));
    }
    Event e(Event::kUint);
    e.u = u;
    return On(e);
  }
  bool Double(double d) override {
    if (InDataList()) return input_.builder->Double(d);
    Event e(Event::kDouble);
    e.d = d;
    return On(e);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) override {
    if (InDataList()) return input_.builder->String(s, n, copy);
    Event e(Event::kString);
    e.s = std::string_view(s, n);
    return On(e);
  }
  bool StartObject() override { return On(Event(Event::kStartObject)); }
  bool Key(const char* s, rapidjson::SizeType n, bool) override {
    Event e(Event::kKey);
    e.s = std::string_view(s, n);
    return On(e);
  }
  bool EndObject(rapidjson::SizeType) override { return On(Event(Event::kEndObject)); }
  bool StartArray() override { return On(Event(Event::kStartArray)); }
  bool EndArray(rapidjson::SizeType) override { return On(Event(Event::kEndArray)); }

  // After ReadJson succeeded: the request, or the first error.
  StatusOr<std::unique_ptr<InferenceRequest>> Result() {
    if (!error_.ok()) return error_;
    return std::move(request_);
  }

 private:
  // Where the reader is: the innermost open object or array it reads.
  enum class Context {
    kDocument,       // before the root value
    kRequest,        // the root object
    kParameters,     // "parameters" of the request or of an output
    kInputs,         // the "inputs" array
    kInput,          // one input object
    kShape,          // an input's "shape" array
    kInputParameters,
    kOutputs,
    kOutput,
  };

  enum class Field { kMissing, kOk, kBad };

  struct Input {
    size_t index = 0;
    Field name_state = Field::kMissing, datatype_state = Field::kMissing;
    std::string name, datatype;
    enum class Shape { kMissing, kOk, kNotArray, kBadElement } shape_state = Shape::kMissing;
    std::vector<int64_t> shape;
    Field parameters_state = Field::kMissing;
    // SharedMemoryRefOf reads them when the input ends (its name may come
    // after them); a value that is not a scalar is kept as `true`, which
    // every one of them refuses.
    Parameters shared_memory;  // the shared_memory_* parameters, as read
    bool has_binary_size = false;
    bool binary_size_ok = false;
    uint64_t binary_size = 0;
    enum class Data { kNone, kStreamed, kDeferred } data = Data::kNone;
    std::unique_ptr<Tensor> tensor;  // kStreamed
    std::unique_ptr<JsonTensorBuilder> builder;
    std::string deferred_scalar;  // kDeferred: a bare value, written back as JSON
    size_t data_begin = 0, data_end = 0;  // kDeferred: the array or object in json_

    bool ReadyToStream() const {
      return name_state == Field::kOk && datatype_state == Field::kOk &&
             DataTypeFromName(datatype) != DataType::kInvalid && shape_state == Shape::kOk &&
             ElementCount(shape) >= 0 && !has_binary_size;
    }
  };

  struct Output {
    size_t index = 0;
    Field name_state = Field::kMissing;
    RequestedOutput out;
    Status parameters_error;
  };

  void Fail(Status status) {
    if (error_.ok()) error_ = std::move(status);
  }

  // Whether a scalar event is an element of the `data` being streamed: it
  // cannot end the data (only the list's end does), so the builder takes it.
  bool InDataList() const { return streaming_ && skip_depth_ == 0; }

  // Reads past the value that `e` starts.
  void Skip(const Event& e) {
    if (e.opens()) skip_depth_ = 1;
  }

  bool On(const Event& e) {
    if (skip_depth_ > 0) {
      if (e.opens()) {
        ++skip_depth_;
      } else if (e.type == Event::kEndObject || e.type == Event::kEndArray) {
        if (--skip_depth_ == 0 && recording_data_) {
          recording_data_ = false;
          input_.data_end = Offset() + 1;
        }
      }
      return true;
    }
    if (input_.builder != nullptr && streaming_) {
      Forward(e, input_.builder.get());
      if (input_.builder->done()) streaming_ = false;
      return true;
    }
    if (!error_.ok()) {
      // Only the structure is followed now, to tell malformed JSON apart.
      Skip(e);
      return true;
    }
    switch (stack_.empty() ? Context::kDocument : stack_.back()) {
      case Context::kDocument: return OnDocument(e);
      case Context::kRequest: return OnRequest(e);
      case Context::kParameters: return OnParameters(e);
      case Context::kInputs: return OnInputs(e);
      case Context::kInput: return OnInput(e);
      case Context::kShape: return OnShape(e);
      case Context::kInputParameters: return OnInputParameters(e);
      case Context::kOutputs: return OnOutputs(e);
      case Context::kOutput: return OnOutput(e);
    }
    return true;
  }

  template <typename Handler>  // a JsonHandler or a JsonWriter
  static void Forward(const Event& e, Handler* h) {
    switch (e.type) {
      case Event::kNull: h->Null(); return;
      case Event::kBool: h->Bool(e.b); return;
      case Event::kInt: h->Int64(e.i); return;
      case Event::kUint: h->Uint64(e.u); return;
      case Event::kDouble: h->Double(e.d); return;
      case Event::kString:
        h->String(e.s.data(), static_cast<rapidjson::SizeType>(e.s.size()), true);
        return;
      case Event::kStartObject: h->StartObject(); return;
      case Event::kStartArray: h->StartArray(); return;
      case Event::kKey:
        h->Key(e.s.data(), static_cast<rapidjson::SizeType>(e.s.size()), true);
        return;
      case Event::kEndObject: h->EndObject(0); return;
      case Event::kEndArray: h->EndArray(0); return;
    }
  }

  bool OnDocument(const Event& e) {
    if (e.type != Event::kStartObject) {
      Fail(Status::InvalidArgument("the request body must be a JSON object"));
      Skip(e);
      return true;
    }
    stack_.push_back(Context::kRequest);
    return true;
  }

  bool OnRequest(const Event& e) {
    if (e.type == Event::kKey) {
      key_.assign(e.s);
      return true;
    }
    if (e.type == Event::kEndObject) {
      stack_.pop_back();
      if (!inputs_seen_) Fail(Status::InvalidArgument("the request needs an 'inputs' array"));
      return true;
    }
    if (key_ == "id") {
      if (e.type != Event::kString) {
        Fail(Status::InvalidArgument("'id' in the request must be a string"));
        Skip(e);
      } else {
        request_->id = std::string(e.s);
      }
    } else if (key_ == "parameters") {
      if (e.type != Event::kStartObject) {
        Fail(Status::InvalidArgument("'parameters' must be an object"));
        Skip(e);
      } else {
        parameters_target_ = &request_->parameters;
        parameters_where_ = "parameters";
        parameters_error_ = nullptr;
        stack_.push_back(Context::kParameters);
      }
    } else if (key_ == "inputs") {
      if (e.type != Event::kStartArray) {
        Fail(Status::InvalidArgument("the request needs an 'inputs' array"));
        Skip(e);
      } else {
        inputs_seen_ = true;
        stack_.push_back(Context::kInputs);
      }
    } else if (key_ == "outputs") {
      if (e.type != Event::kStartArray) {
        Fail(Status::InvalidArgument("'outputs' must be an array"));
        Skip(e);
      } else {
        stack_.push_back(Context::kOutputs);
      }
    } else {
      Skip(e);
    }
    return true;
  }

  // The members of a "parameters" object, into *parameters_target_; errors
  // go to *parameters_error_ when set (an output's, reported after its
  // name), else straight to the request.
  bool OnParameters(const Event& e) {
    if (e.type == Event::kKey) {
      parameter_key_.assign(e.s);
      return true;
    }
    if (e.type == Event::kEndObject) {
      stack_.pop_back();
      return true;
    }
    auto fail = [this](Status s) {
      if (parameters_error_ == nullptr) return Fail(std::move(s));
      if (parameters_error_->ok()) *parameters_error_ = std::move(s);
    };
    ParameterValue value;
    switch (e.type) {
      case Event::kBool: value = e.b; break;
      case Event::kInt: value = e.i; break;
      case Event::kUint: value = static_cast<double>(e.u); break;  // beyond int64
      case Event::kDouble: value = e.d; break;
      case Event::kString: value = std::string(e.s); break;
      default:
        fail(Status::InvalidArgument("parameter '" + parameter_key_ + "' in '" +
                                     parameters_where_ +
                                     "' must be a boolean, number or string"));
        Skip(e);
        return true;
    }
    if (Status s = CheckKnownParameter(parameter_key_, value, parameters_where_); !s.ok()) {
      fail(std::move(s));
      return true;
    }
    (*parameters_target_)[parameter_key_] = std::move(value);
    return true;
  }

  bool OnInputs(const Event& e) {
    if (e.type == Event::kEndArray) {
      stack_.pop_back();
      if (Status s = cursor_.Finish(); !s.ok()) Fail(std::move(s));
      return true;
    }
    if (e.type != Event::kStartObject) {
      Fail(Status::InvalidArgument("inputs[" + std::to_string(inputs_read_) +
                                   "] must be an object"));
      Skip(e);
      return true;
    }
    input_ = Input();
    input_.index = inputs_read_++;
    stack_.push_back(Context::kInput);
    return true;
  }

  bool OnInput(const Event& e) {
    if (e.type == Event::kKey) {
      key_.assign(e.s);
      return true;
    }
    if (e.type == Event::kEndObject) {
      stack_.pop_back();
      if (Status s = FinishInput(); !s.ok()) Fail(std::move(s));
      input_ = Input();
      return true;
    }
    if (key_ == "name" || key_ == "datatype") {
      const bool ok = e.type == Event::kString;
      (key_ == "name" ? input_.name_state : input_.datatype_state) = ok ? Field::kOk : Field::kBad;
      if (ok) (key_ == "name" ? input_.name : input_.datatype).assign(e.s);
      Skip(e);
    } else if (key_ == "shape") {
      if (e.type != Event::kStartArray) {
        input_.shape_state = Input::Shape::kNotArray;
        Skip(e);
      } else {
        input_.shape_state = Input::Shape::kOk;
        stack_.push_back(Context::kShape);
      }
    } else if (key_ == "parameters") {
      if (e.type != Event::kStartObject) {
        input_.parameters_state = Field::kBad;
        Skip(e);
      } else {
        input_.parameters_state = Field::kOk;
        stack_.push_back(Context::kInputParameters);
      }
    } else if (key_ == "data") {
      StartData(e);
    } else {
      Skip(e);
    }
    return true;
  }

  bool OnShape(const Event& e) {
    if (e.type == Event::kEndArray) {
      stack_.pop_back();
      return true;
    }
    if (e.type == Event::kInt) {  // a negative one is CheckInputShape's to refuse
      input_.shape.push_back(e.i);
    } else {
      input_.shape_state = Input::Shape::kBadElement;
      Skip(e);
    }
    return true;
  }

  bool OnInputParameters(const Event& e) {
    if (e.type == Event::kKey) {
      parameter_key_.assign(e.s);
      return true;
    }
    if (e.type == Event::kEndObject) {
      stack_.pop_back();
      return true;
    }
    if (IsSharedMemoryParameter(parameter_key_)) {
      ParameterValue& v = input_.shared_memory[parameter_key_];
      switch (e.type) {
        case Event::kInt: v = e.i; break;
        case Event::kUint: v = static_cast<double>(e.u); break;  // beyond int64
        case Event::kDouble: v = e.d; break;
        case Event::kString: v = std::string(e.s); break;
        default: v = true; break;
      }
    }
    if (parameter_key_ == "binary_data_size") {
      input_.has_binary_size = true;
      input_.binary_size_ok = e.type == Event::kUint || (e.type == Event::kInt && e.i >= 0);
      input_.binary_size = e.type == Event::kUint ? e.u : static_cast<uint64_t>(e.i);
    }
    Skip(e);
    return true;
  }

  void StartData(const Event& e) {
    if (input_.data != Input::Data::kNone) return Skip(e);
    if (input_.ReadyToStream()) {
      input_.data = Input::Data::kStreamed;
      input_.tensor = std::make_unique<Tensor>(
          input_.name, DataTypeFromName(input_.datatype), input_.shape);
      // Every element takes at least one byte of what is left of the body.
      const auto left = static_cast<int64_t>(json_.size() - std::min(Offset(), json_.size()));
      input_.builder = std::make_unique<JsonTensorBuilder>(
          input_.tensor.get(), JsonTensorBuilder::Nesting::kMatchShape, left + 1);
      Forward(e, input_.builder.get());
      streaming_ = !input_.builder->done();
      return;
    }
    input_.data = Input::Data::kDeferred;
    if (e.opens()) {
      input_.data_begin = Offset();
      recording_data_ = true;
      skip_depth_ = 1;
      return;
    }
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    Forward(e, &w);
    input_.deferred_scalar.assign(buf.GetString(), buf.GetSize());
  }

  // Runs an input's checks, in the order of their precedence, and adds it.
  Status FinishInput() {
    Input& in = input_;
    // The messages are built only on the way out: this runs once per input.
    auto index = [&in] { return "inputs[" + std::to_string(in.index) + "]"; };
    if (in.name_state == Field::kMissing) return Status::InvalidArgument(index() + " needs a 'name'");
    if (in.name_state == Field::kBad) {
      return Status::InvalidArgument("'name' in " + index() + " must be a string");
    }
    auto where = [&] { return index() + " ('" + in.name + "')"; };
    if (in.datatype_state == Field::kMissing) {
      return Status::InvalidArgument(where() + " needs a 'datatype'");
    }
    if (in.datatype_state == Field::kBad) {
      return Status::InvalidArgument("'datatype' in " + where() + " must be a string");
    }
    ASSIGN_OR_RETURN(const DataType type, InputDataType(in.name, in.datatype));
    auto input = [&in] { return "input '" + in.name + "'"; };
    switch (in.shape_state) {
      case Input::Shape::kMissing: return Status::InvalidArgument(input() + " needs a 'shape'");
      case Input::Shape::kNotArray:
        return Status::InvalidArgument("'shape' in " + input() + " must be an array");
      case Input::Shape::kBadElement:
        return Status::InvalidArgument("'shape' in " + input() +
                                       " must hold non-negative integers");
      case Input::Shape::kOk: break;
    }
    RETURN_IF_ERROR(CheckInputShape(in.name, in.shape));
    if (in.parameters_state == Field::kBad) {
      return Status::InvalidArgument("'parameters' of " + input() + " must be an object");
    }
    if (!in.shared_memory.empty()) {
      ASSIGN_OR_RETURN(std::optional<SharedMemoryRef> ref,
                       SharedMemoryRefOf(input(), in.shared_memory));
      if (in.data != Input::Data::kNone || in.has_binary_size) {
        return BothDataAndSharedMemory(in.name);
      }
      request_->inputs.emplace_back(in.name, type, in.shape);
      request_->shared_memory_inputs[in.name] = std::move(*ref);
      return Status::Ok();
    }
    if (in.has_binary_size) {
      if (in.data != Input::Data::kNone) {
        return Status::InvalidArgument(input() + " has both 'data' and binary_data_size");
      }
      if (!in.binary_size_ok) {
        return Status::InvalidArgument(input() +
                                       ": binary_data_size must be a non-negative integer");
      }
      Tensor tensor(in.name, type, in.shape);
      std::string_view raw;
      RETURN_IF_ERROR(cursor_.Take(in.name, in.binary_size, &raw));
      RETURN_IF_ERROR(FillTensorFromRaw(raw, &tensor));
      request_->inputs.push_back(std::move(tensor));
      return Status::Ok();
    }
    switch (in.data) {
      case Input::Data::kNone: return Status::InvalidArgument(input() + " needs 'data'");
      case Input::Data::kStreamed:
        RETURN_IF_ERROR(in.builder->Finish());
        request_->inputs.push_back(std::move(*in.tensor));
        return Status::Ok();
      case Input::Data::kDeferred: {
        const std::string_view data =
            in.deferred_scalar.empty()
                ? json_.substr(in.data_begin, in.data_end - in.data_begin)
                : std::string_view(in.deferred_scalar);
        Tensor tensor(in.name, type, in.shape);
        JsonTensorBuilder builder(&tensor, JsonTensorBuilder::Nesting::kMatchShape,
                                  static_cast<int64_t>(data.size()) + 1);
        RETURN_IF_ERROR(ReadJson(data, &builder));
        RETURN_IF_ERROR(builder.Finish());
        request_->inputs.push_back(std::move(tensor));
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

  bool OnOutputs(const Event& e) {
    if (e.type == Event::kEndArray) {
      stack_.pop_back();
      return true;
    }
    if (e.type != Event::kStartObject) {
      Fail(Status::InvalidArgument("outputs[" + std::to_string(outputs_read_) +
                                   "] must be an object"));
      Skip(e);
      return true;
    }
    output_ = Output();
    output_.index = outputs_read_++;
    stack_.push_back(Context::kOutput);
    return true;
  }

  bool OnOutput(const Event& e) {
    const std::string where = "outputs[" + std::to_string(output_.index) + "]";
    if (e.type == Event::kKey) {
      key_.assign(e.s);
      return true;
    }
    if (e.type == Event::kEndObject) {
      stack_.pop_back();
      if (output_.name_state == Field::kMissing) {
        Fail(Status::InvalidArgument(where + " needs a 'name'"));
      } else if (output_.name_state == Field::kBad) {
        Fail(Status::InvalidArgument("'name' in " + where + " must be a string"));
      } else if (!output_.parameters_error.ok()) {
        Fail(output_.parameters_error);
      } else {
        request_->outputs.push_back(std::move(output_.out));
      }
      return true;
    }
    if (key_ == "name") {
      output_.name_state = e.type == Event::kString ? Field::kOk : Field::kBad;
      if (e.type == Event::kString) output_.out.name = std::string(e.s);
      Skip(e);
    } else if (key_ == "parameters") {
      if (e.type != Event::kStartObject) {
        if (output_.parameters_error.ok()) {
          output_.parameters_error =
              Status::InvalidArgument("'" + where + ".parameters' must be an object");
        }
        Skip(e);
      } else {
        parameters_target_ = &output_.out.parameters;
        parameters_where_ = where + ".parameters";
        parameters_error_ = &output_.parameters_error;
        stack_.push_back(Context::kParameters);
      }
    } else {
      Skip(e);
    }
    return true;
  }

  const std::string_view json_;
  BinaryCursor cursor_;
  std::unique_ptr<InferenceRequest> request_;
  Status error_;
  std::vector<Context> stack_;
  std::string key_;            // the key of the member being read
  std::string parameter_key_;  // the key of the parameter being read
  size_t skip_depth_ = 0;      // > 0: reading past a value, this many levels deep
  bool recording_data_ = false;  // the value skipped is a deferred `data`
  bool streaming_ = false;       // events go to input_.builder
  bool inputs_seen_ = false;
  size_t inputs_read_ = 0, outputs_read_ = 0;
  Input input_;
  Output output_;
  Parameters* parameters_target_ = nullptr;
  std::string parameters_where_;
  Status* parameters_error_ = nullptr;
};

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

void WriteSpecs(const std::vector<TensorSpec>& specs, JsonWriter* w) {
  w->StartArray();
  for (const auto& s : specs) {
    w->StartObject();
    w->Key("name");
    WriteJsonString(w, s.name);
    w->Key("datatype");
    WriteJsonString(w, DataTypeName(s.datatype));
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
  V2RequestReader reader(json, binary);
  RETURN_IF_ERROR(ReadJson(json, &reader));
  return reader.Result();
}

// Triton's answer to binary outputs in JSON: ask for them as binary data.
constexpr std::string_view kV2BinaryRemedy =
    "ask for it as binary data (the output's parameter \"binary_data\": true, or the "
    "request's \"binary_data_output\": true) or use gRPC";

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

StatusOr<EncodedV2Response> WriteV2InferResponse(const InferenceResponse& response,
                                                 const BinaryOutputs& binary) {
  for (const Tensor& t : response.outputs) {
    if (binary.Wants(t.name())) continue;
    RETURN_IF_ERROR(CheckBytesAreText(std::span<const Tensor>(&t, 1), kV2BinaryRemedy));
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model_name");
  WriteJsonString(&w, response.model_name);
  w.Key("model_version");
  WriteJsonString(&w, response.model_version);
  if (!response.id.empty()) {
    w.Key("id");
    WriteJsonString(&w, response.id);
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
    WriteJsonString(&w, t.name());
    w.Key("datatype");
    WriteJsonString(&w, DataTypeName(t.datatype()));
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape()) w.Int64(d);
    w.EndArray();
    if (auto shm = response.shared_memory_outputs.find(t.name());
        shm != response.shared_memory_outputs.end()) {
      w.Key("parameters");
      WriteParameters(SharedMemoryOutputParameters(shm->second), &w);
    } else if (binary.Wants(t.name())) {
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
      if (binary.Wants(t.name()) && !response.shared_memory_outputs.count(t.name())) {
        AppendRaw(t, &encoded.body);
      }
    }
  }
  return encoded;
}

std::string WriteV2ModelMetadata(const ModelMetadata& metadata) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("name");
  WriteJsonString(&w, metadata.name);
  w.Key("versions");
  w.StartArray();
  for (const std::string& v : metadata.versions) WriteJsonString(&w, v);
  w.EndArray();
  w.Key("platform");
  WriteJsonString(&w, metadata.platform);
  w.Key("inputs");
  WriteSpecs(metadata.inputs, &w);
  w.Key("outputs");
  WriteSpecs(metadata.outputs, &w);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string WriteV2ModelReady(std::string_view name, bool ready, std::string_view reason) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("name");
  WriteJsonString(&w, name);
  w.Key("ready");
  w.Bool(ready);
  if (!ready) {
    w.Key("error");
    WriteJsonString(&w, reason);
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
  WriteJsonString(&w, name);
  w.Key("version");
  WriteJsonString(&w, version);
  w.Key("extensions");
  w.StartArray();
  for (const auto& e : extensions) WriteJsonString(&w, e);
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string WriteV2RepositoryIndex(const std::vector<IndexEntry>& index) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartArray();
  for (const IndexEntry& e : index) {
    w.StartObject();
    w.Key("name");
    WriteJsonString(&w, e.name);
    if (!e.version.empty()) {
      w.Key("version");
      WriteJsonString(&w, e.version);
    }
    w.Key("state");
    WriteJsonString(&w, ModelStateName(e.state));
    w.Key("reason");
    WriteJsonString(&w, e.reason);
    w.EndObject();
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

namespace {

void WriteDuration(const char* key, const DurationStat& d, JsonWriter* w) {
  w->Key(key);
  w->StartObject();
  w->Key("count");
  w->Uint64(d.count);
  w->Key("ns");
  w->Uint64(d.ns);
  w->EndObject();
}

}  // namespace

std::string WriteV2ModelStatistics(const std::vector<ModelStatistics>& stats) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("model_stats");
  w.StartArray();
  for (const ModelStatistics& s : stats) {
    w.StartObject();
    w.Key("name");
    WriteJsonString(&w, s.name);
    w.Key("version");
    WriteJsonString(&w, s.version);
    w.Key("last_inference");
    w.Uint64(s.last_inference_ms);
    w.Key("inference_count");
    w.Uint64(s.inference_count);
    w.Key("execution_count");
    w.Uint64(s.execution_count);
    w.Key("inference_stats");
    w.StartObject();
    WriteDuration("success", s.success, &w);
    WriteDuration("fail", s.fail, &w);
    WriteDuration("queue", s.queue, &w);
    WriteDuration("compute_input", s.compute_input, &w);
    WriteDuration("compute_infer", s.compute_infer, &w);
    WriteDuration("compute_output", s.compute_output, &w);
    WriteDuration("cache_hit", s.cache_hit, &w);
    WriteDuration("cache_miss", s.cache_miss, &w);
    w.EndObject();
    w.Key("batch_stats");
    w.StartArray();
    for (const BatchStatistics& b : s.batch_stats) {
      w.StartObject();
      w.Key("batch_size");
      w.Uint64(b.batch_size);
      WriteDuration("compute_input", b.compute_input, &w);
      WriteDuration("compute_infer", b.compute_infer, &w);
      WriteDuration("compute_output", b.compute_output, &w);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace berth::http
