#include "server/http/tfserving_json_codec.h"

#include <algorithm>

#include "server/http/json_rows.h"
#include "server/http/json_tensor.h"

namespace berth::http {
namespace {

using rapidjson::Value;

constexpr std::string_view kDefaultSignature = "serving_default";

const char* StateName(ModelState state) {
  switch (state) {
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "AVAILABLE";
    case ModelState::kUnloading: return "UNLOADING";
    case ModelState::kUnavailable: return "END";
  }
  return "UNKNOWN";
}

// One input's columnar value, read as events: its shape is learnt from the
// nesting as ResolveJsonShape reads it from a tree (the sizes along the
// first elements, every list at a depth as long as the first, trailing
// dimensions of size 1 left out where the spec allows), and its elements go
// straight into the tensor. Same checks and messages as ColumnTensor.
class ColumnReader final : public JsonHandler {
 public:
  // `max_elements` bounds the elements the value can hold (the bytes left in
  // the body): storage for them is reserved, not touched, so the tensor
  // grows in place.
  ColumnReader(const TensorSpec& spec, std::string what, int64_t max_elements)
      : spec_(spec), what_(std::move(what)), tensor_(spec.name, spec.datatype, {}),
        builder_(&tensor_, JsonTensorBuilder::Appending{max_elements}) {
    builder_.set_base64_objects(true);
  }

  bool Null() override { return Leaf([this] { builder_.Null(); }); }
  bool Bool(bool b) override { return Leaf([this, b] { builder_.Bool(b); }); }
  bool Int64(int64_t i) override { return Leaf([this, i] { builder_.Int64(i); }); }
  bool Uint64(uint64_t u) override { return Leaf([this, u] { builder_.Uint64(u); }); }
  bool Double(double d) override { return Leaf([this, d] { builder_.Double(d); }); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) override {
    return Leaf([this, s, n, copy] { builder_.String(s, n, copy); });
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) override {
    if (object_depth_ > 0) builder_.Key(s, n, copy);
    return true;
  }
  bool StartObject() override {
    if (object_depth_ == 0) {
      // One value, {"b64": "..."} or wrongly typed: the builder reads what
      // is inside it.
      Leaf([this] { builder_.StartObject(); });
      done_ = false;  // until the object ends
    } else {
      builder_.StartObject();
    }
    ++object_depth_;
    return true;
  }
  bool EndObject(rapidjson::SizeType n) override {
    builder_.EndObject(n);
    if (--object_depth_ == 0) done_ = open_.empty();
    return true;
  }
  bool StartArray() override {
    if (object_depth_ > 0) {
      builder_.StartArray();
      ++object_depth_;
      return true;
    }
    const size_t depth = open_.size();
    if (!open_.empty()) ++open_.back();
    if (rank_ < 0 && depth == spec_.shape.size()) {
      Fail(what() + " is nested deeper than " + std::to_string(spec_.shape.size()) +
           " level(s)" + Expected());
    } else if (rank_ >= 0 && depth >= static_cast<size_t>(rank_)) {
      Fail(Ragged());
    }
    open_.push_back(0);
    return true;
  }
  bool EndArray(rapidjson::SizeType n) override {
    if (object_depth_ > 0) {
      builder_.EndArray(n);
      if (--object_depth_ == 0) done_ = open_.empty();
      return true;
    }
    const size_t depth = open_.size() - 1;
    const int64_t entries = open_.back();
    open_.pop_back();
    if (entries == 0 && rank_ < 0) rank_ = static_cast<int64_t>(depth) + 1;
    // The first list to end at a depth is the one along the first elements
    // (its later siblings start after it ends): its length is the dimension.
    if (dims_.size() <= depth) dims_.resize(depth + 1, -1);
    if (dims_[depth] < 0) {
      dims_[depth] = entries;
    } else if (entries != dims_[depth]) {
      Fail(Ragged());
    }
    done_ = open_.empty();
    return true;
  }

  bool done() const { return done_; }

  // The tensor, or the first problem.
  StatusOr<Tensor> Finish() {
    if (!error_.empty()) return Status::InvalidArgument(error_);
    std::vector<int64_t> shape(dims_.begin(), dims_.begin() + std::max<int64_t>(rank_, 0));
    const size_t given = shape.size();
    for (size_t i = given; i < spec_.shape.size(); ++i) {
      if (spec_.shape[i] != 1 && spec_.shape[i] != -1) {
        return Status::InvalidArgument(what() + " has shape " + ShapeToString(shape) + Expected());
      }
      shape.push_back(1);
    }
    if (!ShapeMatches(shape, spec_.shape)) {
      return Status::InvalidArgument(what() + " has shape " +
                                     ShapeToString(std::span(shape).first(given)) + Expected());
    }
    RETURN_IF_ERROR(builder_.Finish());
    tensor_.set_shape(std::move(shape));
    if (builder_.elements() != tensor_.element_count()) {
      return Status::Internal("input '" + spec_.name + "': " +
                              std::to_string(builder_.elements()) + " elements read for shape " +
                              ShapeToString(tensor_.shape()));
    }
    return std::move(tensor_);
  }

 private:
  template <typename Put>
  bool Leaf(Put put) {
    if (object_depth_ > 0) {  // inside an element's object: the builder reads it
      put();
      return true;
    }
    const size_t depth = open_.size();
    if (!open_.empty()) ++open_.back();
    if (rank_ < 0) {
      rank_ = static_cast<int64_t>(depth);
    } else if (depth != static_cast<size_t>(rank_)) {
      Fail(Ragged());
    }
    if (error_.empty()) put();
    done_ = open_.empty();
    return true;
  }

  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }
  std::string what() const {
    return what_ + " (input '" + spec_.name + "' is " + std::string(DataTypeName(spec_.datatype)) +
           " " + ShapeToString(spec_.shape) + ")";
  }
  std::string Expected() const { return ", expected " + ShapeToString(spec_.shape); }
  std::string Ragged() const {
    return what() + " is a ragged array: its nested lists differ in length";
  }

  const TensorSpec& spec_;
  const std::string what_;
  Tensor tensor_;
  JsonTensorBuilder builder_;
  std::vector<int64_t> open_;  // entries so far of each open list
  std::vector<int64_t> dims_;  // the length of the first list to end at each depth, or -1
  int64_t rank_ = -1;          // the depth of the values, once one is seen
  size_t object_depth_ = 0;
  bool done_ = false;
  std::string error_;
};

// The columnar "inputs": one input's value, or {input name: value}, each
// read by a ColumnReader as its events come. Same checks and messages as
// TensorsFromColumns.
class ColumnsReader final : public JsonHandler {
 public:
  // `max_elements`: as ColumnReader's.
  ColumnsReader(const std::vector<TensorSpec>& inputs, int64_t max_elements)
      : inputs_(inputs), readers_(inputs.size()), max_elements_(max_elements) {}

  bool Null() override { return Value([](JsonHandler* h) { return h->Null(); }, false); }
  bool Bool(bool b) override { return Value([b](JsonHandler* h) { return h->Bool(b); }, false); }
  bool Int64(int64_t i) override {
    return Value([i](JsonHandler* h) { return h->Int64(i); }, false);
  }
  bool Uint64(uint64_t u) override {
    return Value([u](JsonHandler* h) { return h->Uint64(u); }, false);
  }
  bool Double(double d) override {
    return Value([d](JsonHandler* h) { return h->Double(d); }, false);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) override {
    return Value([=](JsonHandler* h) { return h->String(s, n, copy); }, false);
  }
  bool StartArray() override {
    return Value([](JsonHandler* h) { return h->StartArray(); }, true);
  }
  bool StartObject() override {
    if (current_ == nullptr && skip_depth_ == 0 && state_ == State::kStart) {
      state_ = State::kNamed;
      return true;
    }
    return Value([](JsonHandler* h) { return h->StartObject(); }, true);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) override {
    if (current_ != nullptr) return current_->Key(s, n, copy);
    if (skip_depth_ > 0) return true;
    key_.assign(s, n);
    return true;
  }
  bool EndArray(rapidjson::SizeType n) override {
    return End([n](JsonHandler* h) { return h->EndArray(n); });
  }
  bool EndObject(rapidjson::SizeType n) override {
    if (current_ == nullptr && skip_depth_ == 0 && state_ == State::kNamed) {
      done_ = true;
      return true;
    }
    return End([n](JsonHandler* h) { return h->EndObject(n); });
  }

  bool done() const { return done_; }

  StatusOr<std::vector<Tensor>> Finish() {
    if (!error_.ok()) return error_;
    std::vector<Tensor> tensors;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      const TensorSpec& spec = inputs_[i];
      if (readers_[i] == nullptr) {
        return Status::InvalidArgument("'inputs' lacks input '" + spec.name + "' (" +
                                       std::string(DataTypeName(spec.datatype)) + " " +
                                       ShapeToString(spec.shape) + ")");
      }
      ASSIGN_OR_RETURN(auto tensor, readers_[i]->Finish());
      tensors.push_back(std::move(tensor));
    }
    return tensors;
  }

 private:
  enum class State { kStart, kNamed };

  // A value starts: one input's whole value (at the start, for a
  // single-input model), a member of {input name: value}, or something inside
  // the value being read or skipped.
  template <typename Forward>
  bool Value(Forward forward, bool opens) {
    if (current_ != nullptr) return Feed(forward);
    if (skip_depth_ > 0) {
      if (opens) ++skip_depth_;
      return true;
    }
    const TensorSpec* spec = nullptr;
    std::string what;
    if (state_ == State::kStart) {
      if (inputs_.size() != 1) {
        Fail(Status::InvalidArgument("the model has " + std::to_string(inputs_.size()) +
                                     " inputs (" + QuotedNames(inputs_) +
                                     "), so 'inputs' must be an object {input name: value}"));
        done_ = !opens;
        if (opens) skip_depth_ = 1;
        return true;
      }
      spec = &inputs_[0];
      what = "'inputs'";
    } else {
      for (const TensorSpec& s : inputs_) {
        if (s.name == key_) spec = &s;
      }
      if (spec == nullptr) {
        Fail(Status::InvalidArgument("'inputs' has '" + key_ +
                                     "', which is not an input of the model (inputs: " +
                                     QuotedNames(inputs_) + ")"));
        if (opens) skip_depth_ = 1;
        return true;
      }
      what = "'inputs'['" + spec->name + "']";
    }
    auto& reader = readers_[spec - inputs_.data()];
    reader = std::make_unique<ColumnReader>(*spec, std::move(what), max_elements_);
    current_ = reader.get();
    return Feed(forward);
  }

  template <typename Forward>
  bool End(Forward forward) {
    if (current_ != nullptr) return Feed(forward);
    if (skip_depth_ > 0 && --skip_depth_ == 0 && state_ == State::kStart) done_ = true;
    return true;
  }

  template <typename Forward>
  bool Feed(Forward forward) {
    forward(current_);
    if (current_->done()) {
      current_ = nullptr;
      if (state_ == State::kStart) done_ = true;
    }
    return true;
  }

  void Fail(Status status) {
    if (error_.ok()) error_ = std::move(status);
  }

  const std::vector<TensorSpec>& inputs_;
  std::vector<std::unique_ptr<ColumnReader>> readers_;  // by input
  ColumnReader* current_ = nullptr;  // the reader of the value being read
  const int64_t max_elements_;
  State state_ = State::kStart;
  std::string key_;
  size_t skip_depth_ = 0;
  bool done_ = false;
  Status error_;
};

// Reads a predict body from ReadJson's events without holding it as one
// document: each entry of "instances" is parsed on its own, from its extent
// in the body, when it ends, handed to a RowsBuilder and dropped; "inputs"
// (the columnar format) goes to a ColumnsReader as it is read.
// Errors do not stop the reading (malformed JSON is reported instead, as the
// tree parser did); the first is kept, and reported in the order of the
// tree decoder's checks: the body's form, unknown fields and the signature
// as they come, then both or neither format, then the rows or columns.
class PredictReader final : public JsonHandler {
 public:
  PredictReader(std::string_view body, const std::vector<TensorSpec>& inputs)
      : body_(body), inputs_(inputs), rows_(inputs, RowForm::kAuto, "instances") {
    rows_.set_base64_objects(true);
  }

  bool Null() override {
    if (state_ == State::kColumns) return Columns([](JsonHandler* h) { return h->Null(); });
    return Scalar([](auto* h) { h->Null(); });
  }
  bool Bool(bool b) override {
    if (state_ == State::kColumns) return Columns([b](JsonHandler* h) { return h->Bool(b); });
    return Scalar([b](auto* h) { h->Bool(b); });
  }
  bool Int64(int64_t i) override {
    if (state_ == State::kColumns) return Columns([i](JsonHandler* h) { return h->Int64(i); });
    return Scalar([i](auto* h) { h->Int64(i); });
  }
  bool Uint64(uint64_t u) override {
    if (state_ == State::kColumns) return Columns([u](JsonHandler* h) { return h->Uint64(u); });
    return Scalar([u](auto* h) { h->Uint64(u); });
  }
  bool Double(double d) override {
    if (state_ == State::kColumns) return Columns([d](JsonHandler* h) { return h->Double(d); });
    return Scalar([d](auto* h) { h->Double(d); });
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) override {
    if (state_ == State::kColumns) {
      return Columns([=](JsonHandler* h) { return h->String(s, n, copy); });
    }
    if (skip_depth_ == 0 && state_ == State::kRequest && key_ == "signature_name") {
      const std::string_view name(s, n);
      if (name != kDefaultSignature) {
        Fail(Status::InvalidArgument("unknown signature '" + std::string(name) +
                                     "': the model has only '" + std::string(kDefaultSignature) +
                                     "'"));
      }
      return true;
    }
    return Scalar([=](auto* h) { h->String(s, n, copy); });
  }
  bool StartObject() override {
    if (state_ == State::kColumns) return Columns([](JsonHandler* h) { return h->StartObject(); });
    return Open(false);
  }
  bool StartArray() override {
    if (state_ == State::kColumns) return Columns([](JsonHandler* h) { return h->StartArray(); });
    return Open(true);
  }
  bool EndObject(rapidjson::SizeType n) override {
    if (state_ == State::kColumns) return Columns([n](JsonHandler* h) { return h->EndObject(n); });
    return Close();
  }
  bool EndArray(rapidjson::SizeType n) override {
    if (state_ == State::kColumns) return Columns([n](JsonHandler* h) { return h->EndArray(n); });
    return Close();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) override {
    if (state_ == State::kColumns) {
      return Columns([=](JsonHandler* h) { return h->Key(s, n, copy); });
    }
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
    out.request->protocol = Protocol::kTfServing;
    if (has_instances_) {
      if (!instances_is_array_) {
        return Status::InvalidArgument("'instances' must be a list of rows");
      }
      RETURN_IF_ERROR(rows_error_);
      ASSIGN_OR_RETURN(out.request->inputs, rows_.Finish());
      out.format = TfServingFormat::kRow;
      out.rows = rows_.rows();
    } else {
      ASSIGN_OR_RETURN(out.request->inputs, columns_->Finish());
      out.format = TfServingFormat::kColumnar;
    }
    return out;
  }

 private:
  enum class State { kDocument, kRequest, kInstances, kColumns, kDone };
  // What a value read past is for.
  enum class Capture { kNone, kRow };

  // An event of the columnar "inputs" value, which columns_ reads.
  template <typename Forward>
  bool Columns(Forward forward) {
    forward(columns_.get());
    if (columns_->done()) state_ = State::kRequest;
    return true;
  }

  // The columnar "inputs" value starts with the event `forward` hands over.
  template <typename Forward>
  void StartColumns(Forward forward) {
    has_columns_ = true;
    // Every element takes at least two bytes of what is left of the body (a
    // digit and a comma), but the last.
    const size_t left = body_.size() - std::min(body_.size(), Offset());
    columns_ = std::make_unique<ColumnsReader>(inputs_, static_cast<int64_t>(left / 2 + 1));
    state_ = State::kColumns;
    Columns(forward);
  }

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
          StartColumns([array](JsonHandler* h) {
            return array ? h->StartArray() : h->StartObject();
          });
          return true;
        } else if (key_ == "signature_name") {
          Fail(Status::InvalidArgument("'signature_name' must be a string"));
        }
        StartCapture(Capture::kNone);
        return true;
      case State::kInstances:
        StartCapture(Capture::kRow);
        return true;
      case State::kColumns:  // StartObject/StartArray hand these to columns_
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
        StartColumns([&write](JsonHandler* h) {
          write(h);
          return true;
        });
        return true;
      }
    }
    if (what == Capture::kNone) return true;
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    write(&w);
    Take(std::string_view(buf.GetString(), buf.GetSize()));
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
    if (what == Capture::kRow) Take(body_.substr(capture_begin_, end - capture_begin_));
  }

  // A row, as JSON text: parsed on its own.
  void Take(std::string_view json) {
    if (!error_.ok() || !rows_error_.ok()) return;
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
  std::unique_ptr<ColumnsReader> columns_;
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
    RETURN_IF_ERROR(WriteRowPredictions(response.outputs, rows, OutputNames::kUnlessSingle, &w,
                                        BytesEncoding::kTextOrBase64));
  } else {
    w.Key("outputs");
    if (response.outputs.size() == 1) {
      WriteTensorNested(response.outputs[0], &w, BytesEncoding::kTextOrBase64);
    } else {
      w.StartObject();
      for (const Tensor& t : response.outputs) {
        w.Key(t.name().data(), static_cast<rapidjson::SizeType>(t.name().size()));
        WriteTensorNested(t, &w, BytesEncoding::kTextOrBase64);
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
    WriteJsonString(&w, std::to_string(v->version));
    w.Key("state");
    w.String(StateName(v->state));
    w.Key("status");
    w.StartObject();
    w.Key("error_code");
    w.String(failed ? "UNKNOWN" : "OK");
    w.Key("error_message");
    WriteJsonString(&w, failed ? std::string_view(v->reason) : std::string_view());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace berth::http
