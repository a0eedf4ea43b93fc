// Fuzz target: SageMaker's text/csv bodies (http::ParseCsvTensor).
//
// The first byte picks the input's spec: FP32 or FP64 (bit 0), a fixed width
// of (byte >> 2) % 8 columns or any width (bit 1; a width of 0 stands for an
// unsuitable spec, rank 1); the rest is the body. Beyond not crashing: the
// only error is INVALID_ARGUMENT, and a parsed tensor has the spec's name and
// type, rank 2, the spec's width when it has one, and exactly rows x columns
// values.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/datatype.h"
#include "server/http/csv_tensor.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  berth::TensorSpec spec;
  spec.name = "x";
  spec.datatype = (data[0] & 1) != 0 ? berth::DataType::kFp64 : berth::DataType::kFp32;
  const int64_t width = (data[0] >> 2) % 8;
  if ((data[0] & 2) != 0) {
    spec.shape = {-1, -1};
  } else if (width == 0) {
    spec.shape = {-1};
  } else {
    spec.shape = {-1, width};
  }
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto parsed = berth::http::ParseCsvTensor(body, spec);
  if (!parsed.ok()) {
    if (parsed.status().code() != berth::Status::Code::kInvalidArgument) {
      Fail("unexpected status " + parsed.status().ToString());
    }
    return 0;
  }
  const berth::Tensor& t = *parsed;
  if (t.name() != spec.name || t.datatype() != spec.datatype) Fail("name or datatype changed");
  if (t.shape().size() != 2 || t.shape()[0] < 1 || t.shape()[1] < 1) Fail("not a [rows, n] tensor");
  if (spec.shape.size() == 2 && spec.shape[1] != -1 && t.shape()[1] != spec.shape[1]) {
    Fail("width differs from the spec's");
  }
  const size_t values = static_cast<size_t>(t.shape()[0] * t.shape()[1]);
  if (t.bytes().size() != values * berth::DataTypeByteSize(t.datatype())) {
    Fail("tensor bytes do not match its shape");
  }
  return 0;
}
