#include "server/http/json_rows.h"

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
void WriteBlock(const Tensor& t, size_t dim, int64_t* offset, JsonWriter* w) {
  if (dim == t.shape().size()) {
    WriteTensorElement(t, (*offset)++, w);
    return;
  }
  w->StartArray();
  for (int64_t i = 0; i < t.shape()[dim]; ++i) WriteBlock(t, dim + 1, offset, w);
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

// Whether the row's form (an object naming inputs, or a bare value) agrees
// with the first row's and the model, and an object names only inputs.
Status RowsBuilder::CheckForm(const Value& row) {
  const int64_t r = rows_;
  if (r == 0) {
    named_ = row.IsObject();
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
  if (row.IsObject() != named_) {
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

Status WriteRowPredictions(std::span<const Tensor> outputs, int64_t rows, OutputNames names,
                           JsonWriter* w) {
  for (const Tensor& t : outputs) {
    if (t.shape().empty() || t.shape()[0] != rows) {
      return Status::FailedPrecondition(
          "output '" + t.name() + "' has shape " + ShapeToString(t.shape()) +
          ", which does not have one entry per row (" + std::to_string(rows) +
          "), so it cannot be returned row by row");
    }
  }
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
      WriteBlock(outputs[o], 1, &offsets[o], w);
    }
    if (keyed) w->EndObject();
  }
  w->EndArray();
  return Status::Ok();
}

}  // namespace berth::http
