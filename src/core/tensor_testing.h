// Test helpers: build a Tensor from typed values and read them back. For unit
// tests only.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace berth::testing {

// A tensor of fixed-size elements holding `values` (row-major).
template <typename T>
Tensor MakeTensor(const std::string& name, DataType type, std::vector<int64_t> shape,
                  const std::vector<T>& values) {
  Tensor t(name, type, std::move(shape));
  t.bytes().resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(t.bytes().data(), values.data(), t.bytes().size());
  return t;
}

// The elements of a fixed-size tensor as T.
template <typename T>
std::vector<T> TensorValues(const Tensor& t) {
  std::vector<T> out(t.bytes().size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), t.bytes().data(), t.bytes().size());
  return out;
}

}  // namespace berth::testing
