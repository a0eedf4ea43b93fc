#include "monitoring/tensor_values.h"

#include <cmath>
#include <cstring>

#include "core/float16.h"

namespace berth {
namespace {

template <typename T>
T Load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

double ElementAsDouble(const Tensor& t, int64_t i) {
  const std::byte* p = t.bytes().data() + i * static_cast<int64_t>(DataTypeByteSize(t.datatype()));
  switch (t.datatype()) {
    case DataType::kBool: return Load<uint8_t>(p) != 0 ? 1 : 0;
    case DataType::kUint8: return Load<uint8_t>(p);
    case DataType::kUint16: return Load<uint16_t>(p);
    case DataType::kUint32: return Load<uint32_t>(p);
    case DataType::kUint64: return static_cast<double>(Load<uint64_t>(p));
    case DataType::kInt8: return Load<int8_t>(p);
    case DataType::kInt16: return Load<int16_t>(p);
    case DataType::kInt32: return Load<int32_t>(p);
    case DataType::kInt64: return static_cast<double>(Load<int64_t>(p));
    case DataType::kFp16: return HalfToFloat(Load<uint16_t>(p));
    case DataType::kFp32: return Load<float>(p);
    case DataType::kFp64: return Load<double>(p);
    default: return std::nan("");
  }
}

bool IsIntegerType(DataType t) {
  return t != DataType::kFp16 && t != DataType::kFp32 && t != DataType::kFp64 &&
         t != DataType::kBytes;
}

}  // namespace berth
