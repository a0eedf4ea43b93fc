#include "server/grpc/grpc_codec.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <type_traits>
#include <variant>

#include "core/raw_tensor.h"
#include "core/request_validator.h"
#include "core/shared_memory_io.h"

namespace berth::rpc {
namespace {

// Raw contents are little-endian on the wire and Tensor bytes are
// little-endian in memory: both are copied as they are.
static_assert(std::endian::native == std::endian::little,
              "the raw tensor codec assumes a little-endian host");

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;
using google::protobuf::Map;
using google::protobuf::RepeatedField;

// `where` names the parameters' object as the v2 JSON form does
// ("parameters", "outputs[0].parameters"), so that both doors word their
// errors alike (CheckKnownParameter).
Status DecodeParameter(const std::string& key, const InferParameter& p, const std::string& where,
                       Parameters* out) {
  ParameterValue value;
  switch (p.parameter_choice_case()) {
    case InferParameter::kBoolParam: value = p.bool_param(); break;
    case InferParameter::kInt64Param: value = p.int64_param(); break;
    case InferParameter::kStringParam: value = p.string_param(); break;
    case InferParameter::kDoubleParam: value = p.double_param(); break;
    case InferParameter::kUint64Param:
      if (p.uint64_param() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Status::InvalidArgument("parameter '" + key + "' in '" + where +
                                       "' is larger than the largest int64");
      }
      value = static_cast<int64_t>(p.uint64_param());
      break;
    case InferParameter::PARAMETER_CHOICE_NOT_SET:
      return Status::InvalidArgument("parameter '" + key + "' in '" + where + "' has no value");
  }
  RETURN_IF_ERROR(CheckKnownParameter(key, value, where));
  (*out)[key] = std::move(value);
  return Status::Ok();
}

Status DecodeParameters(const Map<std::string, InferParameter>& params, const std::string& where,
                        Parameters* out) {
  for (const auto& [key, value] : params) RETURN_IF_ERROR(DecodeParameter(key, value, where, out));
  return Status::Ok();
}

void EncodeParameters(const Parameters& params, Map<std::string, InferParameter>* out) {
  for (const auto& [key, value] : params) {
    InferParameter& p = (*out)[key];
    std::visit(
        [&p](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) p.set_bool_param(v);
          else if constexpr (std::is_same_v<T, int64_t>) p.set_int64_param(v);
          else if constexpr (std::is_same_v<T, double>) p.set_double_param(v);
          else p.set_string_param(v);
        },
        value);
  }
}

// The typed field that carries `type`, for error messages; nullptr for FP16.
const char* ContentsField(DataType type) {
  switch (type) {
    case DataType::kBool: return "bool_contents";
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32: return "int_contents";
    case DataType::kInt64: return "int64_contents";
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32: return "uint_contents";
    case DataType::kUint64: return "uint64_contents";
    case DataType::kFp32: return "fp32_contents";
    case DataType::kFp64: return "fp64_contents";
    case DataType::kBytes: return "bytes_contents";
    case DataType::kFp16:
    case DataType::kInvalid: return nullptr;
  }
  return nullptr;
}

// The number of elements in each typed field, in the order of ContentsField.
struct FieldCount {
  const char* field;
  int count;
};

std::vector<FieldCount> PopulatedFields(const InferTensorContents& c) {
  const FieldCount all[] = {
      {"bool_contents", c.bool_contents_size()},   {"int_contents", c.int_contents_size()},
      {"int64_contents", c.int64_contents_size()}, {"uint_contents", c.uint_contents_size()},
      {"uint64_contents", c.uint64_contents_size()}, {"fp32_contents", c.fp32_contents_size()},
      {"fp64_contents", c.fp64_contents_size()},   {"bytes_contents", c.bytes_contents_size()},
  };
  std::vector<FieldCount> out;
  for (const auto& f : all) {
    if (f.count > 0) out.push_back(f);
  }
  return out;
}

// Narrows each wire value into T, refusing values out of T's range.
template <typename T, typename Wire>
Status CopyNarrowed(const RepeatedField<Wire>& values, Tensor* tensor) {
  T* dst = tensor->data<T>();
  for (int i = 0; i < values.size(); ++i) {
    const Wire v = values.Get(i);
    if (v < static_cast<Wire>(std::numeric_limits<T>::min()) ||
        v > static_cast<Wire>(std::numeric_limits<T>::max())) {
      return Status::InvalidArgument("input '" + tensor->name() + "' holds " + std::to_string(v) +
                                     " at flat index " + std::to_string(i) + ", out of range for " +
                                     std::string(DataTypeName(tensor->datatype())));
    }
    dst[i] = static_cast<T>(v);
  }
  return Status::Ok();
}

template <typename T>
void CopySame(const RepeatedField<T>& values, Tensor* tensor) {
  if (values.empty()) return;
  std::memcpy(tensor->bytes().data(), values.data(), values.size() * sizeof(T));
}

Status DecodeTypedContents(const InferTensorContents& c, Tensor* tensor) {
  const std::string& name = tensor->name();
  const char* field = ContentsField(tensor->datatype());
  if (field == nullptr) {
    return Status::InvalidArgument("input '" + name + "' is " +
                                   std::string(DataTypeName(tensor->datatype())) +
                                   ", which has no typed contents field: send it in "
                                   "raw_input_contents");
  }
  int count = 0;
  for (const FieldCount& f : PopulatedFields(c)) {
    if (std::strcmp(f.field, field) != 0) {
      return Status::InvalidArgument("input '" + name + "' is " +
                                     std::string(DataTypeName(tensor->datatype())) +
                                     " but has data in contents." + f.field +
                                     "; expected contents." + field);
    }
    count = f.count;
  }
  const int64_t want = tensor->element_count();
  if (count != want) {
    return Status::InvalidArgument("input '" + name + "' has " + std::to_string(count) +
                                   " elements in contents." + field + " but shape " +
                                   ShapeToString(tensor->shape()) + " needs " +
                                   std::to_string(want));
  }
  RETURN_IF_ERROR(tensor->Allocate());
  switch (tensor->datatype()) {
    case DataType::kBool: {
      auto* dst = tensor->data<uint8_t>();
      for (int i = 0; i < count; ++i) dst[i] = c.bool_contents(i) ? 1 : 0;
      return Status::Ok();
    }
    case DataType::kInt8: return CopyNarrowed<int8_t>(c.int_contents(), tensor);
    case DataType::kInt16: return CopyNarrowed<int16_t>(c.int_contents(), tensor);
    case DataType::kInt32: CopySame(c.int_contents(), tensor); return Status::Ok();
    case DataType::kInt64: CopySame(c.int64_contents(), tensor); return Status::Ok();
    case DataType::kUint8: return CopyNarrowed<uint8_t>(c.uint_contents(), tensor);
    case DataType::kUint16: return CopyNarrowed<uint16_t>(c.uint_contents(), tensor);
    case DataType::kUint32: CopySame(c.uint_contents(), tensor); return Status::Ok();
    case DataType::kUint64: CopySame(c.uint64_contents(), tensor); return Status::Ok();
    case DataType::kFp32: CopySame(c.fp32_contents(), tensor); return Status::Ok();
    case DataType::kFp64: CopySame(c.fp64_contents(), tensor); return Status::Ok();
    case DataType::kBytes:
      tensor->strings().assign(c.bytes_contents().begin(), c.bytes_contents().end());
      return Status::Ok();
    case DataType::kFp16:
    case DataType::kInvalid: break;
  }
  return Status::Internal("no typed decoder for " + std::string(DataTypeName(tensor->datatype())));
}

bool HasTypedContents(const ModelInferRequest::InferInputTensor& input) {
  return input.has_contents() && !PopulatedFields(input.contents()).empty();
}

// Whether an input's data is in shared memory (it has any of the
// shared_memory_* parameters): it then has no entry in raw_input_contents, as
// tritonclient sends it.
bool InSharedMemory(const ModelInferRequest::InferInputTensor& input) {
  for (const auto& [key, value] : input.parameters()) {
    if (IsSharedMemoryParameter(key)) return true;
  }
  return false;
}

// `raw_index`: the input's entry in raw_input_contents, counting only the
// inputs that are not in shared memory.
Status DecodeInput(const ModelInferRequest& request, int index, int raw_index,
                   InferenceRequest* out) {
  const auto& in = request.inputs(index);
  const std::string where = "inputs[" + std::to_string(index) + "]";
  if (in.name().empty()) return Status::InvalidArgument(where + " needs a name");
  const std::string& name = in.name();
  ASSIGN_OR_RETURN(const DataType type, InputDataType(name, in.datatype()));
  std::vector<int64_t> shape(in.shape().begin(), in.shape().end());
  RETURN_IF_ERROR(CheckInputShape(name, shape));
  if (InSharedMemory(in)) {
    Parameters shm;
    for (const auto& [key, value] : in.parameters()) {
      if (IsSharedMemoryParameter(key)) {
        RETURN_IF_ERROR(DecodeParameter(key, value, where + ".parameters", &shm));
      }
    }
    ASSIGN_OR_RETURN(std::optional<SharedMemoryRef> ref,
                     SharedMemoryRefOf("input '" + name + "'", shm));
    if (HasTypedContents(in)) return BothDataAndSharedMemory(name);
    out->inputs.emplace_back(name, type, std::move(shape));
    out->shared_memory_inputs[name] = std::move(*ref);
    return Status::Ok();
  }
  Tensor tensor(name, type, std::move(shape));
  if (request.raw_input_contents_size() > 0) {
    if (HasTypedContents(in)) {
      return Status::InvalidArgument("input '" + name +
                                     "' has typed contents but the request uses "
                                     "raw_input_contents; use one form for every input");
    }
    RETURN_IF_ERROR(FillTensorFromRaw(request.raw_input_contents(raw_index), &tensor));
  } else {
    RETURN_IF_ERROR(DecodeTypedContents(in.contents(), &tensor));
  }
  out->inputs.push_back(std::move(tensor));
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<InferenceRequest>> DecodeInferRequest(const ModelInferRequest& request) {
  if (request.model_name().empty()) return Status::InvalidArgument("model_name is required");
  int data_inputs = 0;  // the inputs not in shared memory
  for (const auto& in : request.inputs()) data_inputs += InSharedMemory(in) ? 0 : 1;
  if (request.raw_input_contents_size() > 0 &&
      request.raw_input_contents_size() != data_inputs) {
    const bool all = data_inputs == request.inputs_size();
    return Status::InvalidArgument(
        "raw_input_contents has " + std::to_string(request.raw_input_contents_size()) +
        " entries but the request has " + std::to_string(data_inputs) +
        (all ? " inputs; it needs one entry per input"
             : " inputs not in shared memory; it needs one entry per such input"));
  }
  auto out = std::make_unique<InferenceRequest>();
  out->protocol = Protocol::kGrpc;
  out->model_name = request.model_name();
  out->model_version = request.model_version();
  out->id = request.id();
  RETURN_IF_ERROR(DecodeParameters(request.parameters(), "parameters", &out->parameters));
  out->inputs.reserve(request.inputs_size());
  for (int i = 0, raw = 0; i < request.inputs_size(); ++i) {
    RETURN_IF_ERROR(DecodeInput(request, i, raw, out.get()));
    if (!InSharedMemory(request.inputs(i))) ++raw;
  }
  for (int i = 0; i < request.outputs_size(); ++i) {
    const auto& o = request.outputs(i);
    if (o.name().empty()) {
      return Status::InvalidArgument("outputs[" + std::to_string(i) + "] needs a name");
    }
    RequestedOutput requested;
    requested.name = o.name();
    const std::string where = "outputs[" + std::to_string(i) + "].parameters";
    RETURN_IF_ERROR(DecodeParameters(o.parameters(), where, &requested.parameters));
    out->outputs.push_back(std::move(requested));
  }
  return out;
}

void EncodeInferResponse(const InferenceResponse& response, inference::ModelInferResponse* out) {
  out->set_model_name(response.model_name);
  out->set_model_version(response.model_version);
  out->set_id(response.id);
  EncodeParameters(response.parameters, out->mutable_parameters());
  for (const Tensor& t : response.outputs) {
    auto* o = out->add_outputs();
    o->set_name(t.name());
    o->set_datatype(std::string(DataTypeName(t.datatype())));
    for (int64_t d : t.shape()) o->add_shape(d);
    // An output in shared memory keeps an empty entry, so that entry i is
    // still output i's (tritonclient's as_numpy indexes them so).
    std::string* contents = out->add_raw_output_contents();
    if (auto shm = response.shared_memory_outputs.find(t.name());
        shm != response.shared_memory_outputs.end()) {
      EncodeParameters(SharedMemoryOutputParameters(shm->second), o->mutable_parameters());
      continue;
    }
    contents->reserve(RawByteSize(t));
    AppendRaw(t, contents);
  }
}

void EncodeModelMetadata(const ModelMetadata& metadata, inference::ModelMetadataResponse* out) {
  out->set_name(metadata.name);
  for (const std::string& v : metadata.versions) out->add_versions(v);
  out->set_platform(metadata.platform);
  auto add = [](const std::vector<TensorSpec>& specs, auto* field) {
    for (const TensorSpec& s : specs) {
      auto* m = field->Add();
      m->set_name(s.name);
      m->set_datatype(std::string(DataTypeName(s.datatype)));
      for (int64_t d : s.shape) m->add_shape(d);
    }
  };
  add(metadata.inputs, out->mutable_inputs());
  add(metadata.outputs, out->mutable_outputs());
}

void EncodeRepositoryIndex(const std::vector<IndexEntry>& index,
                           inference::RepositoryIndexResponse* out) {
  for (const IndexEntry& e : index) {
    auto* m = out->add_models();
    m->set_name(e.name);
    m->set_version(e.version);
    m->set_state(ModelStateName(e.state));
    m->set_reason(e.reason);
  }
}

namespace {

void EncodeDuration(const DurationStat& d, inference::StatisticDuration* out) {
  out->set_count(d.count);
  out->set_ns(d.ns);
}

}  // namespace

void EncodeModelStatistics(const std::vector<ModelStatistics>& stats,
                           inference::ModelStatisticsResponse* out) {
  for (const ModelStatistics& s : stats) {
    auto* m = out->add_model_stats();
    m->set_name(s.name);
    m->set_version(s.version);
    m->set_last_inference(s.last_inference_ms);
    m->set_inference_count(s.inference_count);
    m->set_execution_count(s.execution_count);
    auto* i = m->mutable_inference_stats();
    EncodeDuration(s.success, i->mutable_success());
    EncodeDuration(s.fail, i->mutable_fail());
    EncodeDuration(s.queue, i->mutable_queue());
    EncodeDuration(s.compute_input, i->mutable_compute_input());
    EncodeDuration(s.compute_infer, i->mutable_compute_infer());
    EncodeDuration(s.compute_output, i->mutable_compute_output());
    EncodeDuration(s.cache_hit, i->mutable_cache_hit());
    EncodeDuration(s.cache_miss, i->mutable_cache_miss());
    for (const BatchStatistics& b : s.batch_stats) {
      auto* batch = m->add_batch_stats();
      batch->set_batch_size(b.batch_size);
      EncodeDuration(b.compute_input, batch->mutable_compute_input());
      EncodeDuration(b.compute_infer, batch->mutable_compute_infer());
      EncodeDuration(b.compute_output, batch->mutable_compute_output());
    }
  }
}

}  // namespace berth::rpc
