// Fuzz target: the ONNX wire-format scanner that finds external data
// locations before ONNX Runtime sees a model (ExternalDataLocations).
//
// Beyond not crashing or reading out of bounds: the only error is
// INVALID_ARGUMENT, and every location found is a substring of the input
// (the scanner copies, never invents, bytes).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "backends/onnxruntime/onnx_external_data.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view model(reinterpret_cast<const char*>(data), size);
  auto refs = berth::ExternalDataLocations(model);
  if (!refs.ok()) {
    if (refs.status().code() != berth::Status::Code::kInvalidArgument) {
      Fail("unexpected status " + refs.status().ToString());
    }
    return 0;
  }
  for (const berth::ExternalDataRef& ref : *refs) {
    if (model.find(ref.location) == std::string_view::npos) Fail("a location not in the input");
    if (model.find(ref.tensor) == std::string_view::npos) Fail("a tensor name not in the input");
  }
  return 0;
}
