#include "core/shared_memory_io.h"

#include <cstring>
#include <string_view>
#include <variant>

#include "core/raw_tensor.h"

namespace berth {

bool IsSharedMemoryParameter(const std::string& key) {
  return key == kSharedMemoryRegion || key == kSharedMemoryByteSize ||
         key == kSharedMemoryOffset;
}

Status BothDataAndSharedMemory(const std::string& input) {
  return Status::InvalidArgument("input '" + input + "' has both data and " +
                                 kSharedMemoryRegion + "; send one or the other");
}

StatusOr<std::optional<SharedMemoryRef>> SharedMemoryRefOf(const std::string& what,
                                                           const Parameters& parameters) {
  auto region = parameters.find(kSharedMemoryRegion);
  auto size = parameters.find(kSharedMemoryByteSize);
  auto offset = parameters.find(kSharedMemoryOffset);
  if (region == parameters.end() && size == parameters.end() && offset == parameters.end()) {
    return std::optional<SharedMemoryRef>();
  }
  auto non_negative = [&what](const Parameters::const_iterator& it,
                              uint64_t* out) -> Status {
    if (!std::holds_alternative<int64_t>(it->second) || std::get<int64_t>(it->second) < 0) {
      return Status::InvalidArgument("parameter '" + it->first + "' of " + what +
                                     " must be a non-negative integer");
    }
    *out = static_cast<uint64_t>(std::get<int64_t>(it->second));
    return Status::Ok();
  };
  SharedMemoryRef ref;
  if (region == parameters.end() || !std::holds_alternative<std::string>(region->second) ||
      std::get<std::string>(region->second).empty()) {
    return Status::InvalidArgument(what + " uses shared memory: parameter '" +
                                   std::string(kSharedMemoryRegion) +
                                   "' must name a registered region");
  }
  ref.region = std::get<std::string>(region->second);
  if (size == parameters.end()) {
    return Status::InvalidArgument(what + " uses shared memory region '" + ref.region +
                                   "' without '" + kSharedMemoryByteSize + "'");
  }
  RETURN_IF_ERROR(non_negative(size, &ref.byte_size));
  if (offset != parameters.end()) RETURN_IF_ERROR(non_negative(offset, &ref.offset));
  return std::optional<SharedMemoryRef>(std::move(ref));
}

Parameters SharedMemoryOutputParameters(const SharedMemoryRef& written) {
  Parameters p;
  p[kSharedMemoryRegion] = written.region;
  p[kSharedMemoryByteSize] = static_cast<int64_t>(written.byte_size);
  if (written.offset != 0) p[kSharedMemoryOffset] = static_cast<int64_t>(written.offset);
  return p;
}

bool UsesSharedMemory(const InferenceRequest& request) {
  if (!request.shared_memory_inputs.empty()) return true;
  for (const RequestedOutput& o : request.outputs) {
    if (o.parameters.count(kSharedMemoryRegion)) return true;
  }
  return false;
}

StatusOr<std::unique_ptr<SharedMemoryIo>> SharedMemoryIo::Prepare(
    const SharedMemoryRegistry* registry, InferenceRequest* request) {
  if (registry == nullptr) {
    return Status::Unavailable("system shared memory is not available on this server");
  }
  auto io = std::make_unique<SharedMemoryIo>();
  for (Tensor& t : request->inputs) {
    auto it = request->shared_memory_inputs.find(t.name());
    if (it == request->shared_memory_inputs.end()) continue;
    const SharedMemoryRef& ref = it->second;
    ASSIGN_OR_RETURN(SharedMemoryWindow window,
                     registry->Window(ref.region, ref.offset, ref.byte_size));
    const std::span<std::byte> bytes = window.bytes();
    std::string_view raw(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    // The client may write the region while it is read: BYTES are parsed
    // from a private copy, so that each length prefix is read once and the
    // checks hold for the data used. Fixed-size elements are copied in one
    // pass (BOOL is checked on the copy).
    std::string copy;
    if (t.datatype() == DataType::kBytes) {
      copy.assign(raw);
      raw = copy;
    }
    RETURN_IF_ERROR(FillTensorFromRaw(raw, &t));
  }
  for (const RequestedOutput& o : request->outputs) {
    ASSIGN_OR_RETURN(std::optional<SharedMemoryRef> ref,
                     SharedMemoryRefOf("output '" + o.name + "'", o.parameters));
    if (!ref) continue;
    ASSIGN_OR_RETURN(SharedMemoryWindow window,
                     registry->Window(ref->region, ref->offset, ref->byte_size));
    io->outputs_[o.name] = Output{std::move(*ref), std::move(window)};
  }
  return io;
}

Status SharedMemoryIo::WriteOutputs(InferenceResponse* response) const {
  for (Tensor& t : response->outputs) {
    auto it = outputs_.find(t.name());
    if (it == outputs_.end()) continue;
    const std::span<std::byte> window = it->second.window.bytes();
    const size_t size = RawByteSize(t);
    if (size > window.size()) {
      return Status::InvalidArgument(
          "shared memory size specified with the request for output '" + t.name() + "' (" +
          std::to_string(window.size()) + " bytes) should be at least " + std::to_string(size) +
          " bytes to hold the results");
    }
    if (t.datatype() == DataType::kBytes) {
      std::string raw;
      raw.reserve(size);
      AppendRaw(t, &raw);
      if (!raw.empty()) std::memcpy(window.data(), raw.data(), raw.size());
    } else if (size > 0) {
      std::memcpy(window.data(), t.bytes().data(), size);
    }
    SharedMemoryRef written = it->second.ref;
    written.byte_size = size;
    response->shared_memory_outputs[t.name()] = std::move(written);
    t.bytes() = {};
    t.strings() = {};
  }
  return Status::Ok();
}

}  // namespace berth
