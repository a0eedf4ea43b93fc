#include "core/request_validator.h"

#include <cmath>
#include <set>
#include <string>
#include <variant>

#include "core/float16.h"

namespace berth {
namespace {

const TensorSpec* FindSpec(const std::vector<TensorSpec>& specs, const std::string& name) {
  for (const auto& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

template <typename T, typename ToDouble>
Status CheckFinite(const Tensor& t, ToDouble to_double) {
  const T* p = t.data<T>();
  const int64_t n = t.element_count();
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(to_double(p[i]))) {
      return Status::InvalidArgument("input '" + t.name() + "' holds a non-finite value (" +
                                     std::to_string(to_double(p[i])) + ") at flat index " +
                                     std::to_string(i) +
                                     "; this model does not accept NaN or Infinity");
    }
  }
  return Status::Ok();
}

Status CheckNoNan(const Tensor& t) {
  switch (t.datatype()) {
    case DataType::kFp32: return CheckFinite<float>(t, [](float v) { return double{v}; });
    case DataType::kFp64: return CheckFinite<double>(t, [](double v) { return v; });
    case DataType::kFp16:
      return CheckFinite<uint16_t>(t, [](uint16_t v) { return double{HalfToFloat(v)}; });
    default: return Status::Ok();
  }
}

}  // namespace

StatusOr<DataType> InputDataType(const std::string& input, std::string_view datatype) {
  const DataType type = DataTypeFromName(datatype);
  if (type == DataType::kInvalid) {
    return Status::InvalidArgument("input '" + input + "' has unknown datatype '" +
                                   std::string(datatype) + "'");
  }
  return type;
}

Status CheckInputShape(const std::string& input, std::span<const int64_t> shape) {
  for (int64_t d : shape) {
    if (d < 0) {
      return Status::InvalidArgument("input '" + input + "' has a negative dimension in shape " +
                                     ShapeToString(shape));
    }
  }
  if (ElementCount(shape) < 0) {
    return Status::InvalidArgument("input '" + input + "' has a shape too large: " +
                                   ShapeToString(shape));
  }
  return Status::Ok();
}

Status CheckKnownParameter(const std::string& key, const ParameterValue& value,
                           const std::string& where) {
  if (key == "binary_data" || key == "binary_data_output") {
    if (!std::holds_alternative<bool>(value)) {
      return Status::InvalidArgument("parameter '" + key + "' in '" + where +
                                     "' must be a boolean (true or false)");
    }
  } else if (key == "classification" || key == "timeout") {
    if (!std::holds_alternative<int64_t>(value) || std::get<int64_t>(value) < 0) {
      return Status::InvalidArgument("parameter '" + key + "' in '" + where +
                                     "' must be a non-negative integer");
    }
  }
  return Status::Ok();
}

Status ValidateRequest(const Model& model, const InferenceRequest& request) {
  const auto& sig = model.signature;
  const int64_t max_batch = model.config.max_batch_size;
  std::set<std::string> seen;
  int64_t batch = -1;
  for (const Tensor& t : request.inputs) {
    const TensorSpec* spec = FindSpec(sig.inputs, t.name());
    if (spec == nullptr) {
      std::string known;
      for (const auto& s : sig.inputs) known += (known.empty() ? "'" : ", '") + s.name + "'";
      return Status::InvalidArgument("model '" + model.name + "' has no input '" + t.name() +
                                     "' (inputs: " + known + ")");
    }
    if (!seen.insert(t.name()).second) {
      return Status::InvalidArgument("input '" + t.name() + "' is given more than once");
    }
    if (t.datatype() != spec->datatype) {
      return Status::InvalidArgument("input '" + t.name() + "' has datatype " +
                                     std::string(DataTypeName(t.datatype())) + ", expected " +
                                     std::string(DataTypeName(spec->datatype)));
    }
    if (!ShapeMatches(t.shape(), spec->shape)) {
      return Status::InvalidArgument("input '" + t.name() + "' has shape " +
                                     ShapeToString(t.shape()) + ", expected " +
                                     ShapeToString(spec->shape));
    }
    RETURN_IF_ERROR(t.CheckConsistent());
    if (max_batch > 0) {
      const int64_t b = t.shape().empty() ? 0 : t.shape()[0];
      if (b > max_batch) {
        return Status::InvalidArgument("input '" + t.name() + "' has batch size " +
                                       std::to_string(b) + ", over the model's max_batch_size " +
                                       std::to_string(max_batch));
      }
      if (batch >= 0 && b != batch) {
        return Status::InvalidArgument("inputs disagree on the batch size (" +
                                       std::to_string(batch) + " and " + std::to_string(b) +
                                       ")");
      }
      batch = b;
    }
    if (!model.config.allow_nan) RETURN_IF_ERROR(CheckNoNan(t));
  }
  for (const auto& s : sig.inputs) {
    if (!seen.count(s.name)) {
      return Status::InvalidArgument("missing input '" + s.name + "' (" +
                                     std::string(DataTypeName(s.datatype)) + " " +
                                     ShapeToString(s.shape) + ")");
    }
  }
  std::set<std::string> outputs;
  for (const auto& o : request.outputs) {
    if (FindSpec(sig.outputs, o.name) == nullptr) {
      return Status::InvalidArgument("model '" + model.name + "' has no output '" + o.name + "'");
    }
    if (!outputs.insert(o.name).second) {
      return Status::InvalidArgument("output '" + o.name + "' is requested more than once");
    }
  }
  return Status::Ok();
}

}  // namespace berth
