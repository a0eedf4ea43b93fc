#include "server/http/json_rows.h"

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
  const std::string expected = ", expected " + ShapeToString(pattern);
  std::vector<int64_t> shape;
  for (const Value* v = &value; v->IsArray(); v = &(*v)[0]) {
    // Checked before anything recurses, so that a deeply nested body costs
    // no more than the pattern's rank of stack.
    if (shape.size() == pattern.size()) {
      return Status::InvalidArgument(std::string(what) + " is nested deeper than " +
                                     std::to_string(pattern.size()) + " level(s)" + expected);
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
                                     expected);
    }
    shape.push_back(1);
  }
  if (!ShapeMatches(shape, pattern)) {
    return Status::InvalidArgument(std::string(what) + " has shape " +
                                   ShapeToString(std::span(shape).first(given)) + expected);
  }
  return shape;
}

StatusOr<std::vector<Tensor>> TensorsFromRows(const Value& rows,
                                              const std::vector<TensorSpec>& inputs, RowForm form,
                                              std::string_view list_name) {
  const std::string list = "'" + std::string(list_name) + "'";
  if (!rows.IsArray()) return Status::InvalidArgument(list + " must be a list of rows");
  if (rows.Empty()) return Status::InvalidArgument(list + " is empty");
  const auto row_name = [&](size_t r) {
    return std::string(list_name) + "[" + std::to_string(r) + "]";
  };

  const bool named = rows[0].IsObject();
  if (!named && form == RowForm::kNamed) {
    return Status::InvalidArgument(row_name(0) +
                                   " must be an object {input name: value} (inputs: " +
                                   QuotedNames(inputs) + ")");
  }
  if (!named && inputs.size() != 1) {
    return Status::InvalidArgument("the model has " + std::to_string(inputs.size()) +
                                   " inputs (" + QuotedNames(inputs) + "), so each row of " + list +
                                   " must be an object {input name: value}");
  }
  for (size_t r = 0; r < rows.Size(); ++r) {
    if (rows[r].IsObject() != named) {
      return Status::InvalidArgument(row_name(r) + (named ? " is not" : " is") +
                                     " an object, but " + row_name(0) +
                                     (named ? " is" : " is not") +
                                     ": every row must have the same form");
    }
    if (!named) continue;
    for (const auto& m : rows[r].GetObject()) {
      if (FindInput(inputs, Name(m.name)) == nullptr) {
        return Status::InvalidArgument(row_name(r) + " has '" + std::string(Name(m.name)) +
                                       "', which is not an input of the model (inputs: " +
                                       QuotedNames(inputs) + ")");
      }
    }
    // Every member names an input, so more members than inputs means one
    // is given twice.
    if (rows[r].MemberCount() > inputs.size()) {
      return Status::InvalidArgument(row_name(r) + " names an input more than once");
    }
  }

  const int64_t n = rows.Size();
  std::vector<Tensor> tensors;
  tensors.reserve(inputs.size());
  std::vector<const Value*> parts(rows.Size());
  for (const TensorSpec& spec : inputs) {
    if (spec.shape.empty()) {
      return Status::InvalidArgument("input '" + spec.name +
                                     "' is a scalar (shape []), which has no batch dimension to "
                                     "put rows in");
    }
    const std::span<const int64_t> row_pattern = std::span(spec.shape).subspan(1);
    std::vector<int64_t> row_shape;
    for (size_t r = 0; r < rows.Size(); ++r) {
      const std::string what = row_name(r) + (named ? "['" + spec.name + "']" : "");
      if (named) {
        auto it = rows[r].FindMember(spec.name.c_str());
        if (it == rows[r].MemberEnd()) {
          return Status::InvalidArgument(row_name(r) + " lacks input '" + spec.name + "' (" +
                                         std::string(DataTypeName(spec.datatype)) + " " +
                                         ShapeToString(spec.shape) + ")");
        }
        parts[r] = &it->value;
      } else {
        parts[r] = &rows[r];
      }
      ASSIGN_OR_RETURN(auto shape,
                       ResolveJsonShape(*parts[r], row_pattern,
                                        what + " (input '" + spec.name + "' is " +
                                            std::string(DataTypeName(spec.datatype)) + " " +
                                            ShapeToString(spec.shape) + ")"));
      if (r == 0) {
        row_shape = std::move(shape);
      } else if (shape != row_shape) {
        return Status::InvalidArgument(what + " has shape " + ShapeToString(shape) + ", but " +
                                       row_name(0) + " has " + ShapeToString(row_shape) +
                                       ": rows must agree");
      }
    }
    std::vector<int64_t> shape{n};
    shape.insert(shape.end(), row_shape.begin(), row_shape.end());
    Tensor tensor(spec.name, spec.datatype, std::move(shape));
    RETURN_IF_ERROR(FillTensorFromJsonParts(parts, &tensor));
    tensors.push_back(std::move(tensor));
  }
  return tensors;
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
