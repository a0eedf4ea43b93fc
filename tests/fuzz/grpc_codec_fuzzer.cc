// Fuzz target: the gRPC infer request decoder (rpc::DecodeInferRequest), fed
// a ModelInferRequest parsed from the input as gRPC would parse it off the
// wire.
//
// Beyond not crashing: bytes protobuf refuses are skipped, as gRPC drops
// them; the decoder's only errors are INVALID_ARGUMENT and UNIMPLEMENTED
// (shared memory); and a decoded request has one tensor per input, each
// holding exactly the data its shape asks for.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/datatype.h"
#include "core/tensor.h"
#include "server/grpc/grpc_codec.h"

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inference::ModelInferRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto decoded = berth::rpc::DecodeInferRequest(request);
  if (!decoded.ok()) {
    const auto code = decoded.status().code();
    if (code != berth::Status::Code::kInvalidArgument &&
        code != berth::Status::Code::kUnimplemented) {
      Fail("unexpected status " + decoded.status().ToString());
    }
    return 0;
  }
  const berth::InferenceRequest& r = **decoded;
  if (r.model_name.empty()) Fail("decoded a request without a model name");
  if (r.inputs.size() != static_cast<size_t>(request.inputs_size())) {
    Fail("decoded input count differs from the request's");
  }
  for (const berth::Tensor& t : r.inputs) {
    for (int64_t d : t.shape()) {
      if (d < 0) Fail("negative dimension in a decoded input");
    }
    // Tensor's own count: a zero dimension after huge ones is a valid empty
    // tensor whose running product would overflow int64 if multiplied here.
    const int64_t elements = berth::ElementCount(t.shape());
    if (elements < 0) Fail("input '" + t.name() + "' has a shape whose size overflows");
    const size_t held = t.datatype() == berth::DataType::kBytes
                            ? t.strings().size()
                            : t.bytes().size() / std::max<size_t>(1, berth::DataTypeByteSize(t.datatype()));
    if (held != static_cast<size_t>(elements)) {
      Fail("input '" + t.name() + "' holds " + std::to_string(held) + " elements, its shape " +
           std::to_string(elements));
    }
  }
  return 0;
}
