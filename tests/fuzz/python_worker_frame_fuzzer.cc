// Fuzz target: the decoder of frames a Python worker sends the server
// (backends/python/worker_frame.h). The worker runs user code, so its bytes
// are not trusted.
//
// Beyond not crashing, reading out of bounds or allocating what the frame
// cannot fill: the only errors are INVALID_ARGUMENT (and an ERROR frame's own
// INTERNAL), and a decoded RESULT encodes back to the same body.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "backends/python/worker_frame.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

void ExpectRefusal(const berth::Status& s) {
  if (!s.ok() && s.code() != berth::Status::Code::kInvalidArgument) {
    Fail("unexpected status " + s.ToString());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace py = berth::python;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto kind = py::KindOf(body);
  ExpectRefusal(kind.status());
  std::vector<berth::Tensor> tensors;
  const berth::Status result = py::DecodeResult(body, &tensors);
  ExpectRefusal(result);
  if (result.ok()) {
    auto again = py::EncodeResult(tensors);
    if (!again.ok() || again->substr(4) != body) Fail("a RESULT does not encode back to its body");
  }
  berth::ModelSignature signature;
  ExpectRefusal(py::DecodeReady(body, &signature));
  std::vector<std::string> names;
  ExpectRefusal(py::DecodeInfer(body, &tensors, &names));
  const berth::Status error = py::DecodeError(body);
  if (!error.ok() && error.code() != berth::Status::Code::kInvalidArgument &&
      error.code() != berth::Status::Code::kInternal) {
    Fail("unexpected status " + error.ToString());
  }
  return 0;
}
