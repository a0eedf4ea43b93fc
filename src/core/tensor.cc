#include "core/tensor.h"

#include <cstdint>
#include <new>

namespace berth {

int64_t ElementCount(std::span<const int64_t> shape) {
  int64_t count = 1;
  bool overflow = false;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    // A zero dimension anywhere makes the product zero, so an overflow of a
    // prefix only counts once every dimension is known to be non-zero.
    if (d != 0 && count > INT64_MAX / d) {
      overflow = true;
    } else {
      count *= d;
    }
  }
  if (count == 0) return 0;
  return overflow ? -1 : count;
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

namespace {

// Bytes for fixed-size types, strings for BYTES. A shape from the wire can
// name more than any buffer holds (e.g. [2^61] of FP64, whose byte count
// wraps to 0 in size_t): that is an error, never a buffer smaller than the
// element count.
StatusOr<size_t> StorageSize(const Tensor& t) {
  const int64_t n = t.element_count();
  if (n < 0) {
    return Status::InvalidArgument("tensor '" + t.name() + "' has an invalid shape " +
                                   ShapeToString(t.shape()));
  }
  const size_t count = static_cast<size_t>(n);
  const size_t element = t.datatype() == DataType::kBytes ? sizeof(std::string)
                                                          : DataTypeByteSize(t.datatype());
  if (element != 0 && count > static_cast<size_t>(PTRDIFF_MAX) / element) {
    return Status::InvalidArgument("tensor '" + t.name() + "' of shape " +
                                   ShapeToString(t.shape()) + " is too large");
  }
  return t.datatype() == DataType::kBytes ? count : count * element;
}

}  // namespace

Status Tensor::Allocate() {
  ASSIGN_OR_RETURN(const size_t size, StorageSize(*this));
  try {
    if (datatype_ == DataType::kBytes) {
      strings_.assign(size, std::string());
    } else {
      bytes_.assign(size, std::byte{0});
    }
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("tensor '" + name_ + "' of shape " + ShapeToString(shape_) +
                                     " does not fit in memory");
  }
  return Status::Ok();
}

Status Tensor::CheckConsistent() const {
  ASSIGN_OR_RETURN(const size_t want, StorageSize(*this));
  if (datatype_ == DataType::kBytes) {
    if (strings_.size() != want) {
      return Status::InvalidArgument("tensor '" + name_ + "' has " +
                                     std::to_string(strings_.size()) +
                                     " elements but shape " + ShapeToString(shape_) +
                                     " needs " + std::to_string(want));
    }
    return Status::Ok();
  }
  if (bytes_.size() != want) {
    return Status::InvalidArgument("tensor '" + name_ + "' has " + std::to_string(bytes_.size()) +
                                   " bytes but shape " + ShapeToString(shape_) + " of " +
                                   std::string(DataTypeName(datatype_)) + " needs " +
                                   std::to_string(want));
  }
  return Status::Ok();
}

}  // namespace berth
