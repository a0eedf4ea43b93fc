// Tensor element types, named as in the Open Inference Protocol (KServe v2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace berth {

enum class DataType : uint8_t {
  kInvalid = 0,
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBytes,  // variable-length byte strings; not stored in a fixed-size buffer
};

// "FP32" -> kFp32; kInvalid for an unknown name.
DataType DataTypeFromName(std::string_view name);
// kFp32 -> "FP32".
std::string_view DataTypeName(DataType type);
// Bytes per element; 0 for kBytes and kInvalid.
size_t DataTypeByteSize(DataType type);

}  // namespace berth
