#include "core/raw_tensor.h"

#include <cstdint>
#include <cstring>

namespace berth {
namespace {

// Checks, before anything is allocated, that `raw` can fill the tensor's
// shape: a request naming a huge shape with a few bytes must not allocate it.
Status CheckRawSize(std::string_view raw, const Tensor& tensor) {
  const int64_t count = tensor.element_count();
  if (count < 0) return Status::Ok();  // Allocate() reports the invalid shape
  const auto n = static_cast<uint64_t>(count);
  if (tensor.datatype() == DataType::kBytes) {
    if (n > raw.size() / 4) {  // every element needs at least its length prefix
      return Status::InvalidArgument("input '" + tensor.name() + "': " +
                                     std::to_string(raw.size()) +
                                     " bytes of binary data cannot hold " + std::to_string(n) +
                                     " BYTES elements");
    }
    return Status::Ok();
  }
  const size_t element = DataTypeByteSize(tensor.datatype());
  if (element == 0) {
    return Status::InvalidArgument("input '" + tensor.name() + "' has no valid datatype");
  }
  if (raw.size() % element == 0 && raw.size() / element == n) return Status::Ok();
  const std::string needs = n <= SIZE_MAX / element
                                ? std::to_string(n * element)
                                : std::to_string(n) + " x " + std::to_string(element);
  return Status::InvalidArgument("input '" + tensor.name() + "': shape " +
                                 ShapeToString(tensor.shape()) + " of " +
                                 std::string(DataTypeName(tensor.datatype())) + " needs " + needs +
                                 " bytes of binary data, got " + std::to_string(raw.size()));
}

}  // namespace

Status FillTensorFromRaw(std::string_view raw, Tensor* tensor) {
  RETURN_IF_ERROR(CheckRawSize(raw, *tensor));
  RETURN_IF_ERROR(tensor->Allocate());
  const auto n = static_cast<size_t>(tensor->element_count());
  if (tensor->datatype() != DataType::kBytes) {
    if (!raw.empty()) std::memcpy(tensor->bytes().data(), raw.data(), raw.size());
    if (tensor->datatype() == DataType::kBool) {
      return CheckRawBool(tensor->bytes(), tensor->name());
    }
    return Status::Ok();
  }
  size_t pos = 0;
  for (size_t i = 0; i < n; ++i) {
    if (raw.size() - pos < 4) {
      return Status::InvalidArgument("input '" + tensor->name() +
                                     "': binary BYTES data ends before element " +
                                     std::to_string(i) + " of " + std::to_string(n));
    }
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data() + pos);
    const uint32_t len = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
    pos += 4;
    if (raw.size() - pos < len) {
      return Status::InvalidArgument("input '" + tensor->name() + "': BYTES element " +
                                     std::to_string(i) + " declares " + std::to_string(len) +
                                     " bytes but only " + std::to_string(raw.size() - pos) +
                                     " remain");
    }
    tensor->strings()[i].assign(raw.data() + pos, len);
    pos += len;
  }
  if (pos != raw.size()) {
    return Status::InvalidArgument("input '" + tensor->name() + "': " +
                                   std::to_string(raw.size() - pos) +
                                   " bytes of binary data left after the last BYTES element");
  }
  return Status::Ok();
}

Status CheckRawBool(std::span<const std::byte> bytes, const std::string& input) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != std::byte{0} && bytes[i] != std::byte{1}) {
      return Status::InvalidArgument("input '" + input + "' holds byte " +
                                     std::to_string(std::to_integer<int>(bytes[i])) +
                                     " at flat index " + std::to_string(i) +
                                     "; a raw BOOL element must be 0 or 1");
    }
  }
  return Status::Ok();
}

size_t RawByteSize(const Tensor& tensor) {
  if (tensor.datatype() != DataType::kBytes) return tensor.bytes().size();
  size_t size = 0;
  for (const auto& s : tensor.strings()) size += 4 + s.size();
  return size;
}

void AppendRaw(const Tensor& tensor, std::string* out) {
  if (tensor.datatype() != DataType::kBytes) {
    out->append(reinterpret_cast<const char*>(tensor.bytes().data()), tensor.bytes().size());
    return;
  }
  for (const auto& s : tensor.strings()) {
    const auto len = static_cast<uint32_t>(s.size());
    const char prefix[4] = {static_cast<char>(len), static_cast<char>(len >> 8),
                            static_cast<char>(len >> 16), static_cast<char>(len >> 24)};
    out->append(prefix, 4);
    out->append(s);
  }
}

}  // namespace berth
