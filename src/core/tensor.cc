#include "core/tensor.h"

namespace berth {

int64_t ElementCount(std::span<const int64_t> shape) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && count > INT64_MAX / d) return -1;
    count *= d;
  }
  return count;
}

std::string ShapeToString(std::span<const int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

bool ShapeMatches(std::span<const int64_t> shape, std::span<const int64_t> pattern) {
  if (shape.size() != pattern.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (pattern[i] >= 0 && pattern[i] != shape[i]) return false;
  }
  return true;
}

Status Tensor::Allocate() {
  const int64_t n = element_count();
  if (n < 0) {
    return Status::InvalidArgument("tensor '" + name_ + "' has an invalid shape " +
                                   ShapeToString(shape_));
  }
  if (datatype_ == DataType::kBytes) {
    strings_.assign(static_cast<size_t>(n), std::string());
  } else {
    bytes_.assign(static_cast<size_t>(n) * DataTypeByteSize(datatype_), std::byte{0});
  }
  return Status::Ok();
}

Status Tensor::CheckConsistent() const {
  const int64_t n = element_count();
  if (n < 0) {
    return Status::InvalidArgument("tensor '" + name_ + "' has an invalid shape " +
                                   ShapeToString(shape_));
  }
  if (datatype_ == DataType::kBytes) {
    if (strings_.size() != static_cast<size_t>(n)) {
      return Status::InvalidArgument("tensor '" + name_ + "' has " +
                                     std::to_string(strings_.size()) +
                                     " elements but shape " + ShapeToString(shape_) +
                                     " needs " + std::to_string(n));
    }
    return Status::Ok();
  }
  const size_t want = static_cast<size_t>(n) * DataTypeByteSize(datatype_);
  if (bytes_.size() != want) {
    return Status::InvalidArgument("tensor '" + name_ + "' has " + std::to_string(bytes_.size()) +
                                   " bytes but shape " + ShapeToString(shape_) + " of " +
                                   std::string(DataTypeName(datatype_)) + " needs " +
                                   std::to_string(want));
  }
  return Status::Ok();
}

}  // namespace berth
