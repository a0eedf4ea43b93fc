#include "server/http/json_rows.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <string>

namespace berth::http {
namespace {

using rapidjson::Value;

const TensorSpec* FindInput(const std::vector<TensorSpec>& inputs, std::string_view name) {
  for (const auto& s : inputs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string_view Name(const Value& member_name) {
  return {member_name.GetString(), member_name.GetStringLength()};
}

// Walks `v` against the shape read from its first elements: every array at
// depth d must have shape[d] entries, and nothing deeper may be an array.
bool IsRectangular(const Value& v, std::span<const int64_t> shape) {
  if (shape.empty()) return !v.IsArray();
  if (!v.IsArray() || static_cast<int64_t>(v.Size()) != shape[0]) return false;
  for (const auto& e : v.GetArray()) {
    if (!IsRectangular(e, shape.subspan(1))) return false;
  }
  return true;
}

// A row of an output of shape [rows, d1, ..., dk]: the block of d1*...*dk
// elements at `offset`, nested by d1..dk.
void WriteBlock(const Tensor& t, size_t dim, int64_t* offset, BytesEncoding bytes,
                JsonWriter* w) {
  if (dim == t.shape().size()) {
    WriteTensorElement(t, (*offset)++, w, bytes);
    return;
  }
  w->StartArray();
  for (int64_t i = 0; i < t.shape()[dim]; ++i) WriteBlock(t, dim + 1, offset, bytes, w);
  w->EndArray();
}

}  // namespace

std::string QuotedNames(const std::vector<TensorSpec>& specs) {
  std::string names;
  for (const auto& s : specs) names += (names.empty() ? "'" : ", '") + s.name + "'";
  return names;
}

Status CheckMembers(const Value& object, std::initializer_list<std::string_view> allowed,
                    std::string_view where) {
  for (const auto& m : object.GetObject()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || Name(m.name) == a;
    if (known) continue;
    std::string expected;
    for (std::string_view a : allowed) {
      expected += (expected.empty() ? "'" : ", '") + std::string(a) + "'";
    }
    return Status::InvalidArgument(std::string(where) + " has an unknown field '" +
                                   std::string(Name(m.name)) + "' (expected " + expected + ")");
  }
  return Status::Ok();
}

StatusOr<std::vector<int64_t>> ResolveJsonShape(const Value& value,
                                                std::span<const int64_t> pattern,
                                                std::string_view what) {
  // Spelled out only for a message: this runs for every row of a list.
  const auto expected = [pattern] { return ", expected " + ShapeToString(pattern); };
  std::vector<int64_t> shape;
  for (const Value* v = &value; v->IsArray(); v = &(*v)[0]) {
    // Checked before anything recurses, so that a deeply nested body costs
    // no more than the pattern's rank of stack.
    if (shape.size() == pattern.size()) {
      return Status::InvalidArgument(std::string(what) + " is nested deeper than " +
                                     std::to_string(pattern.size()) + " level(s)" + expected());
    }
    shape.push_back(v->Size());
    if (v->Empty()) break;
  }
  if (!IsRectangular(value, shape)) {
    return Status::InvalidArgument(std::string(what) +
                                   " is a ragged array: its nested lists differ in length");
  }
  const size_t given = shape.size();
  for (size_t i = given; i < pattern.size(); ++i) {
    if (pattern[i] != 1 && pattern[i] != -1) {
      return Status::InvalidArgument(std::string(what) + " has shape " + ShapeToString(shape) +
                                     expected());
    }
    shape.push_back(1);
  }
  if (!ShapeMatches(shape, pattern)) {
    return Status::InvalidArgument(std::string(what) + " has shape " +
                                   ShapeToString(std::span(shape).first(given)) + expected());
  }
  return shape;
}

struct RowsBuilder::Column {
  const TensorSpec* spec;
  std::vector<int64_t> row_shape;
  int64_t row_elements = 0;
  Tensor tensor;
  std::unique_ptr<JsonTensorBuilder> builder;
};

RowsBuilder::RowsBuilder(const std::vector<TensorSpec>& inputs, RowForm form,
                         std::string_view list_name, int64_t reserve_rows)
    : inputs_(inputs), form_(form), list_name_(list_name), reserve_rows_(reserve_rows) {}

RowsBuilder::~RowsBuilder() = default;

std::string RowsBuilder::RowName(int64_t r) const {
  return list_name_ + "[" + std::to_string(r) + "]";
}

bool RowsBuilder::IsNamed(const Value& row) const {
  if (!row.IsObject()) return false;
  return !(base64_objects_ && row.MemberCount() == 1 && Name(row.MemberBegin()->name) == "b64");
}

// Whether the row's form (an object naming inputs, or a bare value) agrees
// with the first row's and the model, and an object names only inputs.
Status RowsBuilder::CheckForm(const Value& row) {
  const int64_t r = rows_;
  if (r == 0) {
    named_ = IsNamed(row);
    if (!named_ && form_ == RowForm::kNamed) {
      return Status::InvalidArgument(RowName(0) +
                                     " must be an object {input name: value} (inputs: " +
                                     QuotedNames(inputs_) + ")");
    }
    if (!named_ && inputs_.size() != 1) {
      return Status::InvalidArgument("the model has " + std::to_string(inputs_.size()) +
                                     " inputs (" + QuotedNames(inputs_) + "), so each row of '" +
                                     list_name_ + "' must be an object {input name: value}");
    }
    for (const TensorSpec& spec : inputs_) {
      if (spec.shape.empty()) {
        return Status::InvalidArgument("input '" + spec.name +
                                       "' is a scalar (shape []), which has no batch dimension "
                                       "to put rows in");
      }
    }
  }
  if (IsNamed(row) != named_) {
    return Status::InvalidArgument(RowName(r) + (named_ ? " is not" : " is") +
                                   " an object, but " + RowName(0) + (named_ ? " is" : " is not") +
                                   ": every row must have the same form");
  }
  if (!named_) return Status::Ok();
  for (const auto& m : row.GetObject()) {
    if (FindInput(inputs_, Name(m.name)) == nullptr) {
      return Status::InvalidArgument(RowName(r) + " has '" + std::string(Name(m.name)) +
                                     "', which is not an input of the model (inputs: " +
                                     QuotedNames(inputs_) + ")");
    }
  }
  // Every member names an input, so more members than inputs means one is
  // given twice (ParseJson refuses that already; a Document built otherwise
  // may have it).
  if (row.MemberCount() > inputs_.size()) {
    return Status::InvalidArgument(RowName(r) + " names an input more than once");
  }
  return Status::Ok();
}

Status RowsBuilder::Add(const Value& row) {
  RETURN_IF_ERROR(CheckForm(row));
  const int64_t r = rows_;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const TensorSpec& spec = inputs_[i];
    const Value* part = &row;
    if (named_) {
      auto it = row.FindMember(rapidjson::StringRef(spec.name.data(), spec.name.size()));
      if (it == row.MemberEnd()) {
        return Status::InvalidArgument(RowName(r) + " lacks input '" + spec.name + "' (" +
                                       std::string(DataTypeName(spec.datatype)) + " " +
                                       ShapeToString(spec.shape) + ")");
      }
      part = &it->value;
    }
    // The row's name is only spelled out for a message: building it for
    // every row of a large list would cost more than reading the row.
    const auto what = [&] { return RowName(r) + (named_ ? "['" + spec.name + "']" : ""); };
    auto shape = ResolveJsonShape(*part, std::span(spec.shape).subspan(1), "");
    if (!shape.ok()) {
      return ResolveJsonShape(*part, std::span(spec.shape).subspan(1),
                              what() + " (input '" + spec.name + "' is " +
                                  std::string(DataTypeName(spec.datatype)) + " " +
                                  ShapeToString(spec.shape) + ")")
          .status();
    }
    if (r == 0) {
      auto column = std::make_unique<Column>();
      column->spec = &spec;
      column->row_elements = ElementCount(*shape);
      column->row_shape = std::move(*shape);
      column->tensor = Tensor(spec.name, spec.datatype, {});
      int64_t reserve = 0;
      if (column->row_elements > 0 && reserve_rows_ > 0) {
        reserve = reserve_rows_ > std::numeric_limits<int64_t>::max() / column->row_elements
                      ? std::numeric_limits<int64_t>::max()
                      : reserve_rows_ * column->row_elements;
      }
      column->builder = std::make_unique<JsonTensorBuilder>(
          &column->tensor, JsonTensorBuilder::Appending{reserve});
      column->builder->set_base64_objects(base64_objects_);
      columns_.push_back(std::move(column));
    } else if (*shape != columns_[i]->row_shape) {
      return Status::InvalidArgument(what() + " has shape " + ShapeToString(*shape) + ", but " +
                                     RowName(0) + " has " +
                                     ShapeToString(columns_[i]->row_shape) + ": rows must agree");
    }
    ReplayJson(*part, columns_[i]->builder.get());
  }
  ++rows_;
  return Status::Ok();
}

StatusOr<std::vector<Tensor>> RowsBuilder::Finish() {
  if (rows_ == 0) return Status::InvalidArgument("'" + list_name_ + "' is empty");
  std::vector<Tensor> tensors;
  tensors.reserve(columns_.size());
  for (auto& column : columns_) {
    // The rows' elements are counted: each row's value has row_elements
    // elements (ResolveJsonShape checked it), unless one was not a value the
    // datatype takes, which Finish() reports.
    RETURN_IF_ERROR(column->builder->Finish());
    std::vector<int64_t> shape{rows_};
    shape.insert(shape.end(), column->row_shape.begin(), column->row_shape.end());
    column->tensor.set_shape(std::move(shape));
    if (column->builder->elements() != column->tensor.element_count()) {
      return Status::Internal("input '" + column->spec->name + "': " +
                              std::to_string(column->builder->elements()) +
                              " elements read for shape " +
                              ShapeToString(column->tensor.shape()));
    }
    column->builder.reset();
    tensors.push_back(std::move(column->tensor));
  }
  return tensors;
}

StatusOr<std::vector<Tensor>> TensorsFromRows(const Value& rows,
                                              const std::vector<TensorSpec>& inputs, RowForm form,
                                              std::string_view list_name) {
  if (!rows.IsArray()) {
    return Status::InvalidArgument("'" + std::string(list_name) + "' must be a list of rows");
  }
  RowsBuilder builder(inputs, form, list_name, rows.Size());
  for (const auto& row : rows.GetArray()) RETURN_IF_ERROR(builder.Add(row));
  return builder.Finish();
}

namespace {

// Reads a row body from ReadJson's events. The events of one row are built
// into a Document of their own (its SAX handler interface, finished by
// Populate) and, when the row ends, handed to a RowsBuilder and dropped.
// Errors do not stop the reading, so that malformed JSON later in the body
// is reported first, as the tree parser did; the first of each kind is kept.
class RowsBodyReader final : public JsonHandler {
 public:
  RowsBodyReader(std::string_view body, const RowsBody& form,
                 const std::vector<TensorSpec>& inputs)
      : body_(body), form_(form), inputs_(inputs) {}

  bool Null() override { return Scalar([](auto* d) { d->Null(); }); }
  bool Bool(bool b) override { return Scalar([b](auto* d) { d->Bool(b); }); }
  bool Int64(int64_t i) override { return Scalar([i](auto* d) { d->Int64(i); }); }
  bool Uint64(uint64_t u) override { return Scalar([u](auto* d) { d->Uint64(u); }); }
  bool Double(double x) override { return Scalar([x](auto* d) { d->Double(x); }); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) override {
    return Scalar([=](auto* d) { d->String(s, n, copy); });
  }
  bool StartObject() override { return Open(false, [](auto* d) { d->StartObject(); }); }
  bool StartArray() override { return Open(true, [](auto* d) { d->StartArray(); }); }
  bool EndObject(rapidjson::SizeType n) override {
    return Close([n](auto* d) { d->EndObject(n); });
  }
  bool EndArray(rapidjson::SizeType n) override {
    return Close([n](auto* d) { d->EndArray(n); });
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) override {
    if (state_ == State::kRow) {
      if (Live()) row_.Key(s, n, copy);
      return true;
    }
    if (skip_depth_ == 0 && state_ == State::kRequest) MemberKey(std::string_view(s, n));
    return true;
  }

  StatusOr<std::vector<Tensor>> Result() {
    RETURN_IF_ERROR(error_);
    if (list_name_.empty()) return Status::InvalidArgument(form_.missing);
    if (!list_is_array_) {
      return Status::InvalidArgument("'" + list_name_ + "' must be a list of rows");
    }
    RETURN_IF_ERROR(rows_error_);
    return rows_->Finish();
  }

 private:
  enum class State {
    kDocument,  // before the body's value
    kRequest,   // among the members of the body's object
    kList,      // between the rows of the list
    kRow,       // inside a row that is an array or an object
    kDone,      // past the body's value
  };
  // What the value of the member being read is.
  enum class Member { kSkip, kList, kParameters };

  // Rows are still built: no error yet.
  bool Live() const { return error_.ok() && rows_error_.ok(); }

  void Fail(std::string message) {
    if (error_.ok()) error_ = Status::InvalidArgument(std::move(message));
  }

  void MemberKey(std::string_view key) {
    member_ = Member::kSkip;
    if (form_.parameters && key == "parameters") {
      member_ = Member::kParameters;
      return;
    }
    bool is_list_key = false;
    for (std::string_view k : form_.list_keys) is_list_key = is_list_key || key == k;
    if (!is_list_key) {
      Fail("the request has an unknown field '" + std::string(key) + "' (expected " +
           form_.expected + ")");
    } else if (!list_name_.empty()) {
      Fail("the request has both '" + list_name_ + "' and '" + std::string(key) + "'");
    } else {
      list_name_ = key;
      member_ = Member::kList;
    }
  }

  // The value of a member starts: an array, an object or a scalar. Returns
  // whether it is the row list, which is read; anything else is read past.
  bool MemberValue(bool array, bool object) {
    if (member_ == Member::kParameters && !object) Fail("'parameters' must be an object");
    if (member_ != Member::kList) return false;
    list_is_array_ = array;
    return array;
  }

  void StartList(std::string_view name) {
    if (list_name_.empty()) list_name_ = name;
    list_is_array_ = true;
    list_begin_ = Offset();
    rows_ = std::make_unique<RowsBuilder>(inputs_, form_.row_form, list_name_);
    rows_->set_base64_objects(form_.base64_objects);
    state_ = State::kList;
  }

  template <typename Event>
  bool Scalar(Event event) {
    if (skip_depth_ > 0) return true;
    switch (state_) {
      case State::kDocument:
        Fail(form_.not_object);
        state_ = State::kDone;
        break;
      case State::kRequest: MemberValue(false, false); break;
      case State::kList:
        if (Live()) event(&row_);
        EndRow(Offset());
        break;
      case State::kRow:
        if (Live()) event(&row_);
        break;
      case State::kDone: break;
    }
    return true;
  }

  template <typename Event>
  bool Open(bool array, Event event) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    switch (state_) {
      case State::kDocument:
        if (!array) {
          state_ = State::kRequest;
        } else if (form_.bare_list) {
          StartList("rows");
          list_in_object_ = false;
        } else {
          Fail(form_.not_object);
          state_ = State::kDone;
          skip_depth_ = 1;
        }
        break;
      case State::kRequest:
        if (MemberValue(array, !array)) {
          StartList(list_name_);
          list_in_object_ = true;
        } else {
          skip_depth_ = 1;
        }
        break;
      case State::kList:
        state_ = State::kRow;
        row_depth_ = 1;
        if (Live()) event(&row_);
        break;
      case State::kRow:
        ++row_depth_;
        if (Live()) event(&row_);
        break;
      case State::kDone: break;
    }
    return true;
  }

  template <typename Event>
  bool Close(Event event) {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    switch (state_) {
      case State::kRequest: state_ = State::kDone; break;
      case State::kList: state_ = list_in_object_ ? State::kRequest : State::kDone; break;
      case State::kRow:
        if (Live()) event(&row_);
        if (--row_depth_ == 0) EndRow(Offset() + 1);
        break;
      case State::kDocument:
      case State::kDone: break;
    }
    return true;
  }

  // The row ends just before `end` in the body: it is handed over and dropped.
  void EndRow(size_t end) {
    state_ = State::kList;
    if (!Live()) return;
    if (rows_->rows() == 0) {
      // The rows that the rest of the body can hold if they are like the
      // first: storage for them is reserved (not touched) up front.
      const size_t left = body_.size() - std::min(body_.size(), list_begin_);
      const size_t first = std::max<size_t>(end - std::min(end, list_begin_), 1);
      rows_->set_reserve_rows(static_cast<int64_t>(left / first + 1));
    }
    // The row's value is the one left on the document's stack: Populate
    // moves it to the root.
    auto built = [](rapidjson::Document&) { return true; };
    row_.Populate(built);
    rows_error_ = rows_->Add(row_);
    row_.SetNull();
    pool_.Clear();
  }

  const std::string_view body_;
  const RowsBody& form_;
  const std::vector<TensorSpec>& inputs_;
  State state_ = State::kDocument;
  Member member_ = Member::kSkip;
  size_t skip_depth_ = 0;  // open arrays and objects of a value read past
  size_t row_depth_ = 0;   // open arrays and objects of the row being read
  std::string list_name_;  // empty until the list's key (or a bare list) is seen
  bool list_is_array_ = false;
  bool list_in_object_ = false;
  size_t list_begin_ = 0;  // the list's '[' in the body
  std::unique_ptr<RowsBuilder> rows_;
  // A row's document lives in this buffer unless it is large.
  char buffer_[4096];
  rapidjson::MemoryPoolAllocator<> pool_{buffer_, sizeof(buffer_)};
  rapidjson::Document row_{&pool_};
  Status error_;       // the body's form
  Status rows_error_;  // the rows'
};

}  // namespace

StatusOr<std::vector<Tensor>> ReadRowsBody(std::string_view body, const RowsBody& form,
                                           const std::vector<TensorSpec>& inputs) {
  RowsBodyReader reader(body, form, inputs);
  RETURN_IF_ERROR(ReadJson(body, &reader));
  return reader.Result();
}

Status WriteRowPredictions(std::span<const Tensor> outputs, int64_t rows, OutputNames names,
                           JsonWriter* w, BytesEncoding bytes) {
  for (const Tensor& t : outputs) {
    if (t.shape().empty() || t.shape()[0] != rows) {
      return Status::FailedPrecondition(
          "output '" + t.name() + "' has shape " + ShapeToString(t.shape()) +
          ", which does not have one entry per row (" + std::to_string(rows) +
          "), so it cannot be returned row by row");
    }
  }
  if (bytes == BytesEncoding::kText) RETURN_IF_ERROR(CheckBytesAreText(outputs, kRowsBinaryRemedy));
  const bool keyed = names == OutputNames::kAlways || outputs.size() != 1;
  std::vector<int64_t> offsets(outputs.size(), 0);
  w->StartArray();
  for (int64_t r = 0; r < rows; ++r) {
    if (keyed) w->StartObject();
    for (size_t o = 0; o < outputs.size(); ++o) {
      if (keyed) {
        const std::string& name = outputs[o].name();
        w->Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
      }
      WriteBlock(outputs[o], 1, &offsets[o], bytes, w);
    }
    if (keyed) w->EndObject();
  }
  w->EndArray();
  return Status::Ok();
}

}  // namespace berth::http
