// The request's side of the system shared-memory extension, written once for
// every door: the decoders (REST JSON, REST binary, gRPC) read an input's or
// output's shared_memory_* parameters with SharedMemoryRefOf, and
// InferenceService reads the inputs from their regions and writes the
// outputs to theirs (SharedMemoryIo), so REST and gRPC cannot differ.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/inference_request.h"
#include "core/shared_memory.h"
#include "core/status.h"

namespace berth {

// The parameter names, as Triton spells them.
inline constexpr const char* kSharedMemoryRegion = "shared_memory_region";
inline constexpr const char* kSharedMemoryByteSize = "shared_memory_byte_size";
inline constexpr const char* kSharedMemoryOffset = "shared_memory_offset";

// Whether `key` is one of the three parameters above.
bool IsSharedMemoryParameter(const std::string& key);

// The shared-memory reference among `parameters` of an input or output
// (`what`: "input 'x'", "output 'y'"); nullopt when none of the three
// parameters is present. InvalidArgument when shared_memory_region (a
// non-empty string) or shared_memory_byte_size (a non-negative integer) is
// missing or of another type, or shared_memory_offset is not a non-negative
// integer.
StatusOr<std::optional<SharedMemoryRef>> SharedMemoryRefOf(const std::string& what,
                                                           const Parameters& parameters);

// InvalidArgument "input '<input>' has both data and shared_memory_region":
// what every decoder answers for an input that carries both.
Status BothDataAndSharedMemory(const std::string& input);

// The parameters an output written to shared memory carries in the
// response instead of its data: shared_memory_region,
// shared_memory_byte_size (the bytes written) and, when not 0,
// shared_memory_offset.
Parameters SharedMemoryOutputParameters(const SharedMemoryRef& written);

// Whether a request reads an input from, or writes an output to, shared
// memory: one map lookup per requested output.
bool UsesSharedMemory(const InferenceRequest& request);

// The windows one request uses, held until it is answered: a region
// unregistered meanwhile stays mapped until then.
class SharedMemoryIo {
 public:
  // Reads every input of request->shared_memory_inputs from its window into
  // its tensor (the raw form: fixed-size elements little-endian, BYTES
  // length-prefixed; the byte size must be what the datatype and shape
  // need), and takes the windows of the outputs that name a region.
  // NotFound for an unknown region; InvalidArgument for a window outside its
  // region or a size that does not match;
  // Unavailable if `registry` is null.
  static StatusOr<std::unique_ptr<SharedMemoryIo>> Prepare(const SharedMemoryRegistry* registry,
                                                           InferenceRequest* request);

  // Writes each output bound to a region into its window, records it in
  // response->shared_memory_outputs and drops the tensor's data.
  // InvalidArgument if an output needs more bytes than its window holds.
  Status WriteOutputs(InferenceResponse* response) const;

 private:
  struct Output {
    SharedMemoryRef ref;
    SharedMemoryWindow window;
  };
  std::map<std::string, Output> outputs_;  // by output name
};

}  // namespace berth
