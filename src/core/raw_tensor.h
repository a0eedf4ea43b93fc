// The raw (binary) form of tensor data shared by the binary tensor extension
// of the v2 REST protocol and gRPC's raw_input_contents/raw_output_contents:
// fixed-size elements little-endian and row-major; BYTES elements each as a
// 4-byte little-endian length followed by the bytes.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/tensor.h"

namespace berth {

// Fills `tensor` (name, datatype and shape set) from `raw`. InvalidArgument if
// the size disagrees with the shape, a BYTES length runs past the end, or a
// BOOL byte is not 0 or 1 (CheckRawBool).
Status FillTensorFromRaw(std::string_view raw, Tensor* tensor);

// The one check of raw BOOL data, for every door that takes raw bytes (the
// REST binary extension, gRPC raw_input_contents): each byte must be 0 or 1,
// since backends read BOOL as C++ bool, for which any other byte is undefined
// behaviour. InvalidArgument naming the input, the byte and its flat index.
Status CheckRawBool(std::span<const std::byte> bytes, const std::string& input);

// The size of the raw form of `tensor`'s data.
size_t RawByteSize(const Tensor& tensor);

// Appends the raw form of `tensor`'s data to `out`.
void AppendRaw(const Tensor& tensor, std::string* out);

}  // namespace berth
