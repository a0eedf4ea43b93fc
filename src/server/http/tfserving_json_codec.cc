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

// Reads a predict body from ReadJson's events without holding it as one
// document: each entry of "instances" is parsed on its own, from its extent
// in the body, when it ends, handed to a RowsBuilder and dropped; "inputs"
// (the columnar format, one value per input) is parsed on its own likewise.
// Errors do not stop the reading (malformed JSON is reported instead, as the
// tree parser did); the first is kept, and reported in the order of the
// tree decoder's checks: the body's form, unknown fields and the signature
// as they come, then both or neither format, then the rows or columns.
class PredictReader final : public JsonHandler {
 public:
  PredictReader(std::string_view body, const std::vector<TensorSpec>& inputs)
      : body_(body), inputs_(inputs), rows_(inputs, RowForm::kAuto, "instances") {}

  bool Null() override { return Scalar([](JsonWriter* w) { w->Null(); }); }
  bool Bool(bool b) override { return Scalar([b](JsonWriter* w) { w->Bool(b); }); }
  bool Int64(int64_t i) override { return Scalar([i](JsonWriter* w) { w->Int64(i); }); }
  bool Uint64(uint64_t u) override { return Scalar([u](JsonWriter* w) { w->Uint64(u); }); }
  bool Double(double d) override { return Scalar([d](JsonWriter* w) { w->Double(d); }); }
  bool String(const char* s, rapidjson::SizeType n, bool) override {
    if (skip_depth_ == 0 && state_ == State::kRequest && key_ == "signature_name") {
      const std::string_view name(s, n);
      if (name != kDefaultSignature) {
        Fail(Status::InvalidArgument("unknown signature '" + std::string(name) +
                                     "': the model has only '" + std::string(kDefaultSignature) +
                                     "'"));
      }
      return true;
    }
    return Scalar([s, n](JsonWriter* w) { w->String(s, n); });
  }
  bool StartObject() override { return Open(false); }
  bool StartArray() override { return Open(true); }
  bool EndObject(rapidjson::SizeType) override { return Close(); }
  bool EndArray(rapidjson::SizeType) override { return Close(); }
  bool Key(const char* s, rapidjson::SizeType n, bool) override {
    if (skip_depth_ > 0 || state_ != State::kRequest) return true;
    key_.assign(s, n);
    if (key_ != "signature_name" && key_ != "instances" && key_ != "inputs") {
      Fail(Status::InvalidArgument("the request has an unknown field '" + key_ +
                                   "' (expected 'signature_name', 'instances', 'inputs')"));
    }
    return true;
  }

  StatusOr<TfServingPredictRequest> Result() {
    RETURN_IF_ERROR(error_);
    if (has_instances_ == has_columns_) {
      return Status::InvalidArgument(
          "the request needs either 'instances' (row format) or 'inputs' (columnar format), "
          "not " +
          std::string(has_instances_ ? "both" : "neither"));
    }
    TfServingPredictRequest out;
    out.request = std::make_unique<InferenceRequest>();
    if (has_instances_) {
      if (!instances_is_array_) {
        return Status::InvalidArgument("'instances' must be a list of rows");
      }
      RETURN_IF_ERROR(rows_error_);
      ASSIGN_OR_RETURN(out.request->inputs, rows_.Finish());
      out.format = TfServingFormat::kRow;
      out.rows = rows_.rows();
    } else {
      ASSIGN_OR_RETURN(out.request->inputs, std::move(columns_));
      out.format = TfServingFormat::kColumnar;
    }
    return out;
  }

 private:
  enum class State { kDocument, kRequest, kInstances, kDone };
  // What a value read past is for.
  enum class Capture { kNone, kRow, kColumns };

  void Fail(Status status) {
    if (error_.ok()) error_ = std::move(status);
  }

  // A value that opens: the request object, the rows list, or a value to
  // read past (and maybe capture).
  bool Open(bool array) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    switch (state_) {
      case State::kDocument:
        if (array) {
          Fail(Status::InvalidArgument("the request body must be a JSON object"));
          StartCapture(Capture::kNone);
          state_ = State::kDone;
        } else {
          state_ = State::kRequest;
        }
        return true;
      case State::kRequest:
        if (key_ == "instances") {
          has_instances_ = true;
          instances_is_array_ = array;
          if (array) {
            state_ = State::kInstances;
            return true;
          }
        } else if (key_ == "inputs") {
          has_columns_ = true;
          StartCapture(Capture::kColumns);
          return true;
        } else if (key_ == "signature_name") {
          Fail(Status::InvalidArgument("'signature_name' must be a string"));
        }
        StartCapture(Capture::kNone);
        return true;
      case State::kInstances:
        StartCapture(Capture::kRow);
        return true;
      case State::kDone: break;
    }
    return true;
  }

  bool Close() {
    if (skip_depth_ > 0) {
      if (--skip_depth_ == 0) EndCapture(Offset() + 1);
      return true;
    }
    if (state_ == State::kInstances) {
      state_ = State::kRequest;
      return true;
    }
    if (state_ == State::kRequest) state_ = State::kDone;
    return true;
  }

  template <typename Write>
  bool Scalar(Write write) {
    if (skip_depth_ > 0) return true;
    if (state_ == State::kDocument) {
      Fail(Status::InvalidArgument("the request body must be a JSON object"));
      state_ = State::kDone;
      return true;
    }
    Capture what = Capture::kNone;
    if (state_ == State::kInstances) {
      what = Capture::kRow;
    } else if (state_ == State::kRequest) {
      if (key_ == "signature_name") {
        Fail(Status::InvalidArgument("'signature_name' must be a string"));
      }
      if (key_ == "instances") {
        has_instances_ = true;
        instances_is_array_ = false;
      }
      if (key_ == "inputs") {
        has_columns_ = true;
        what = Capture::kColumns;
      }
    }
    if (what == Capture::kNone) return true;
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    write(&w);
    Take(what, std::string_view(buf.GetString(), buf.GetSize()));
    return true;
  }

  void StartCapture(Capture what) {
    capture_ = what;
    capture_begin_ = Offset();
    skip_depth_ = 1;
  }

  void EndCapture(size_t end) {
    const Capture what = capture_;
    capture_ = Capture::kNone;
    if (what != Capture::kNone) Take(what, body_.substr(capture_begin_, end - capture_begin_));
  }

  // A row or the columns, as JSON text: parsed on their own.
  void Take(Capture what, std::string_view json) {
    if (!error_.ok()) return;
    if (what == Capture::kColumns) {
      rapidjson::Document doc;
      Status parsed = ParseJson(json, &doc);
      if (!parsed.ok()) {
        columns_ = parsed;
      } else {
        columns_ = TensorsFromColumns(doc, inputs_);
      }
      return;
    }
    if (!rows_error_.ok()) return;
    if (rows_.rows() == 0) {
      // The rows that the rest of the body can hold if they are like the
      // first: storage for them is reserved (not touched) up front.
      const size_t left = body_.size() - std::min(body_.size(), capture_begin_);
      rows_.set_reserve_rows(static_cast<int64_t>(left / std::max<size_t>(json.size(), 1) + 1));
    }
    // Each row's document lives in a buffer on the stack unless it is large.
    char buffer[4096];
    rapidjson::MemoryPoolAllocator<> pool(buffer, sizeof(buffer));
    rapidjson::Document row(&pool);
    rows_error_ = ParseJson(json, &row);
    if (rows_error_.ok()) rows_error_ = rows_.Add(row);
  }

  std::string_view body_;
  const std::vector<TensorSpec>& inputs_;
  Status error_;
  State state_ = State::kDocument;
  std::string key_;
  bool has_instances_ = false, instances_is_array_ = false, has_columns_ = false;
  size_t skip_depth_ = 0;
  Capture capture_ = Capture::kNone;
  size_t capture_begin_ = 0;
  RowsBuilder rows_;
  Status rows_error_;
  StatusOr<std::vector<Tensor>> columns_ = Status::InvalidArgument("no 'inputs'");
};

}  // namespace

StatusOr<TfServingPredictRequest> ParseTfServingPredictRequest(
    std::string_view body, const std::vector<TensorSpec>& inputs) {
  PredictReader reader(body, inputs);
  RETURN_IF_ERROR(ReadJson(body, &reader));
  return reader.Result();
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
