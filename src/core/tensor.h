// Tensor: a named, typed, shaped block of row-major data; the unit that every
// front end decodes into and every backend reads from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/datatype.h"
#include "core/status.h"

namespace berth {

// The declared form of a model input or output. A -1 dimension is variable.
struct TensorSpec {
  std::string name;
  DataType datatype = DataType::kInvalid;
  std::vector<int64_t> shape;

  bool operator==(const TensorSpec&) const = default;
};

// Number of elements of a fully known shape; -1 if any dimension is negative
// or the product overflows int64.
int64_t ElementCount(std::span<const int64_t> shape);
// "[-1, 4]".
std::string ShapeToString(std::span<const int64_t> shape);
// True if `shape` matches `pattern` (same rank, equal dims, -1 matches any).
bool ShapeMatches(std::span<const int64_t> shape, std::span<const int64_t> pattern);

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::string name, DataType datatype, std::vector<int64_t> shape)
      : name_(std::move(name)), datatype_(datatype), shape_(std::move(shape)) {}

  const std::string& name() const { return name_; }
  DataType datatype() const { return datatype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  void set_shape(std::vector<int64_t> shape) { shape_ = std::move(shape); }
  int64_t element_count() const { return ElementCount(shape_); }

  // Fixed-size element types: raw little-endian bytes, row-major.
  std::vector<std::byte>& bytes() { return bytes_; }
  const std::vector<std::byte>& bytes() const { return bytes_; }
  // BYTES: one string per element, row-major.
  std::vector<std::string>& strings() { return strings_; }
  const std::vector<std::string>& strings() const { return strings_; }

  template <typename T>
  T* data() { return reinterpret_cast<T*>(bytes_.data()); }
  template <typename T>
  const T* data() const { return reinterpret_cast<const T*>(bytes_.data()); }

  // Allocates zeroed storage for element_count() elements of datatype().
  // InvalidArgument if the shape is not fully known or its size overflows;
  // ResourceExhausted if the allocation fails. Callers that fill a tensor
  // from untrusted bytes check first that the data can fill the shape, so
  // that a huge shape with little data does not allocate.
  Status Allocate();

  // Checks that the stored data agrees with datatype() and shape().
  Status CheckConsistent() const;

 private:
  std::string name_;
  DataType datatype_ = DataType::kInvalid;
  std::vector<int64_t> shape_;
  std::vector<std::byte> bytes_;
  std::vector<std::string> strings_;
};

}  // namespace berth
