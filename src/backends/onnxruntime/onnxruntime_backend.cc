#include "backends/onnxruntime/onnxruntime_backend.h"

#include "backends/onnxruntime/onnx_external_data.h"

#include <onnxruntime_cxx_api.h>

#include <chrono>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace berth {
namespace {

// A sequence of maps (skl2onnx's ZipMap) is exposed as a [batch, classes]
// FP32 tensor, one row per map, values in key order.
struct OutputBinding {
  TensorSpec spec;
  bool zipmap = false;
};

DataType FromOrt(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return DataType::kBool;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return DataType::kUint8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return DataType::kUint16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32: return DataType::kUint32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64: return DataType::kUint64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return DataType::kInt8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return DataType::kInt16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return DataType::kInt32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return DataType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return DataType::kFp16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return DataType::kFp32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return DataType::kFp64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING: return DataType::kBytes;
    default: return DataType::kInvalid;
  }
}

ONNXTensorElementDataType ToOrt(DataType type) {
  switch (type) {
    case DataType::kBool: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case DataType::kUint8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case DataType::kUint16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16;
    case DataType::kUint32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32;
    case DataType::kUint64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64;
    case DataType::kInt8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case DataType::kInt16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16;
    case DataType::kInt32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case DataType::kInt64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case DataType::kFp16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case DataType::kFp32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case DataType::kFp64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
    case DataType::kBytes: return ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING;
    default: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  }
}

StatusOr<TensorSpec> TensorSpecFromTypeInfo(const std::string& name, const Ort::TypeInfo& info) {
  if (info.GetONNXType() != ONNX_TYPE_TENSOR) {
    return Status::InvalidArgument("'" + name + "' is not a tensor");
  }
  auto tensor = info.GetTensorTypeAndShapeInfo();
  TensorSpec spec{name, FromOrt(tensor.GetElementType()), tensor.GetShape()};
  if (spec.datatype == DataType::kInvalid) {
    return Status::InvalidArgument("'" + name + "' has an element type Berth does not support (" +
                                   std::to_string(tensor.GetElementType()) + ")");
  }
  for (auto& d : spec.shape) {
    if (d < 0) d = -1;  // symbolic dimensions
  }
  return spec;
}

// Recognises ZipMap's seq(map(int64|string, float)).
bool IsZipMap(const Ort::TypeInfo& info) {
  if (info.GetONNXType() != ONNX_TYPE_SEQUENCE) return false;
  Ort::TypeInfo element = info.GetSequenceTypeInfo().GetSequenceElementType();
  if (element.GetONNXType() != ONNX_TYPE_MAP) return false;
  Ort::TypeInfo value = element.GetMapTypeInfo().GetMapValueType();
  return value.GetONNXType() == ONNX_TYPE_TENSOR &&
         value.GetTensorTypeAndShapeInfo().GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

class OnnxRuntimeBackend final : public Backend {
 public:
  OnnxRuntimeBackend(std::unique_ptr<Ort::Session> session, ModelSignature signature,
                     std::vector<OutputBinding> outputs)
      : session_(std::move(session)),
        signature_(std::move(signature)),
        outputs_(std::move(outputs)),
        memory_info_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {}

  const ModelSignature& signature() const override { return signature_; }

  Status Execute(std::span<const Tensor> inputs, std::span<const std::string> output_names,
                 std::vector<Tensor>* outputs, BackendTimings* timings) override {
    try {
      return Run(inputs, output_names, outputs, timings);
    } catch (const Ort::Exception& e) {
      // ORT reports shape and value problems it finds during Run this way;
      // they come from the request, not from a fault of the server.
      return Status::InvalidArgument(std::string("ONNX Runtime: ") + e.what());
    } catch (const std::exception& e) {
      return Status::Internal(std::string("ONNX Runtime backend: ") + e.what());
    }
  }

 private:
  Status Run(std::span<const Tensor> inputs, std::span<const std::string> output_names,
             std::vector<Tensor>* outputs, BackendTimings* timings) {
    Ort::AllocatorWithDefaultOptions allocator;
    std::vector<Ort::Value> values;
    std::vector<const char*> input_names;
    values.reserve(inputs.size());
    input_names.reserve(inputs.size());
    for (const Tensor& t : inputs) {
      input_names.push_back(t.name().c_str());
      const auto& shape = t.shape();
      if (t.datatype() == DataType::kBytes) {
        Ort::Value v = Ort::Value::CreateTensor(allocator, shape.data(), shape.size(),
                                                ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
        // Copied by length: BYTES elements may hold NUL bytes, which the
        // C-string FillStringTensor would cut off.
        const auto& strings = t.strings();
        for (size_t i = 0; i < strings.size(); ++i) {
          char* dst = v.GetResizedStringTensorElementBuffer(i, strings[i].size());
          if (!strings[i].empty()) std::memcpy(dst, strings[i].data(), strings[i].size());
        }
        values.push_back(std::move(v));
      } else {
        // ORT only reads inputs, so it may alias the request's buffer.
        void* data = const_cast<std::byte*>(t.bytes().data());
        values.push_back(Ort::Value::CreateTensor(memory_info_, data, t.bytes().size(),
                                                  shape.data(), shape.size(),
                                                  ToOrt(t.datatype())));
      }
    }
    std::vector<const char*> names;
    std::vector<bool> zipmap;
    names.reserve(output_names.size());
    for (const auto& n : output_names) {
      names.push_back(n.c_str());
      bool is_zipmap = false;
      for (const auto& b : outputs_) {
        if (b.spec.name == n) is_zipmap = b.zipmap;
      }
      zipmap.push_back(is_zipmap);
    }
    if (timings != nullptr) timings->inputs_ready = std::chrono::steady_clock::now();
    std::vector<Ort::Value> results =
        session_->Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(), values.size(),
                      names.data(), names.size());
    if (timings != nullptr) timings->engine_done = std::chrono::steady_clock::now();
    outputs->clear();
    outputs->reserve(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      if (zipmap[i]) {
        outputs->push_back(FromZipMap(output_names[i], results[i], allocator));
      } else {
        ASSIGN_OR_RETURN(Tensor t, FromOrtValue(output_names[i], results[i]));
        outputs->push_back(std::move(t));
      }
    }
    return Status::Ok();
  }

  static StatusOr<Tensor> FromOrtValue(const std::string& name, const Ort::Value& value) {
    auto info = value.GetTensorTypeAndShapeInfo();
    Tensor t(name, FromOrt(info.GetElementType()), info.GetShape());
    if (t.datatype() == DataType::kInvalid) {
      return Status::Internal("output '" + name + "' has an unsupported element type");
    }
    RETURN_IF_ERROR(t.Allocate());
    const size_t n = static_cast<size_t>(t.element_count());
    if (t.datatype() == DataType::kBytes) {
      const size_t total = value.GetStringTensorDataLength();
      std::string buffer(total, '\0');
      std::vector<size_t> offsets(n);
      if (n > 0) value.GetStringTensorContent(buffer.data(), total, offsets.data(), n);
      for (size_t i = 0; i < n; ++i) {
        const size_t end = i + 1 < n ? offsets[i + 1] : total;
        t.strings()[i] = buffer.substr(offsets[i], end - offsets[i]);
      }
    } else if (!t.bytes().empty()) {
      std::memcpy(t.bytes().data(), value.GetTensorRawData(), t.bytes().size());
    }
    return t;
  }

  static Tensor FromZipMap(const std::string& name, const Ort::Value& seq,
                           OrtAllocator* allocator) {
    const size_t rows = seq.GetCount();
    std::vector<float> data;
    int64_t cols = 0;
    for (size_t r = 0; r < rows; ++r) {
      Ort::Value map = seq.GetValue(static_cast<int>(r), allocator);
      Ort::Value values = map.GetValue(1, allocator);
      const int64_t n = values.GetTensorTypeAndShapeInfo().GetElementCount();
      cols = n;
      const float* p = values.GetTensorData<float>();
      data.insert(data.end(), p, p + n);
    }
    Tensor t(name, DataType::kFp32, {static_cast<int64_t>(rows), cols});
    t.bytes().resize(data.size() * sizeof(float));
    std::memcpy(t.bytes().data(), data.data(), t.bytes().size());
    return t;
  }

  std::unique_ptr<Ort::Session> session_;
  const ModelSignature signature_;
  const std::vector<OutputBinding> outputs_;
  Ort::MemoryInfo memory_info_;
};

StatusOr<GraphOptimizationLevel> ParseOptimizationLevel(const std::string& level) {
  if (level == "disable") return ORT_DISABLE_ALL;
  if (level == "basic") return ORT_ENABLE_BASIC;
  if (level == "extended") return ORT_ENABLE_EXTENDED;
  if (level == "all") return ORT_ENABLE_ALL;
  return Status::InvalidArgument("unknown graph_optimization_level '" + level +
                                 "' (expected disable, basic, extended or all)");
}

class OnnxRuntimeFactory final : public BackendFactory {
 public:
  OnnxRuntimeFactory() : env_(ORT_LOGGING_LEVEL_ERROR, "berth") {}

  std::string_view name() const override { return "onnx"; }
  std::string_view platform() const override { return "onnxruntime_onnx"; }
  std::string_view model_filename() const override { return "model.onnx"; }

  StatusOr<std::unique_ptr<Backend>> Load(const ModelConfig& config,
                                          const std::filesystem::path& model_file) override {
    try {
      return LoadOrThrow(config, model_file);
    } catch (const Ort::Exception& e) {
      return Status::InvalidArgument(std::string("ONNX Runtime could not load ") +
                                     model_file.string() + ": " + e.what());
    }
  }

 private:
  StatusOr<std::unique_ptr<Backend>> LoadOrThrow(const ModelConfig& config,
                                                 const std::filesystem::path& model_file) {
    const auto& opts = config.onnxruntime;
    ASSIGN_OR_RETURN(GraphOptimizationLevel level,
                     ParseOptimizationLevel(opts.graph_optimization_level));
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(opts.intra_op_threads);
    so.SetInterOpNumThreads(opts.inter_op_threads);
    so.SetGraphOptimizationLevel(level);
    if (opts.inter_op_threads > 1) so.SetExecutionMode(ORT_PARALLEL);
    // ONNX Runtime would open whatever file the model's external data names.
    RETURN_IF_ERROR(CheckExternalData(model_file));
    auto session = std::make_unique<Ort::Session>(env_, model_file.c_str(), so);

    Ort::AllocatorWithDefaultOptions allocator;
    ModelSignature signature;
    for (size_t i = 0; i < session->GetInputCount(); ++i) {
      std::string name = session->GetInputNameAllocated(i, allocator).get();
      auto spec = TensorSpecFromTypeInfo(name, session->GetInputTypeInfo(i));
      if (!spec.ok()) return spec.status().WithContext("input");
      signature.inputs.push_back(std::move(spec).value());
    }
    std::vector<OutputBinding> outputs;
    for (size_t i = 0; i < session->GetOutputCount(); ++i) {
      std::string name = session->GetOutputNameAllocated(i, allocator).get();
      Ort::TypeInfo info = session->GetOutputTypeInfo(i);
      OutputBinding binding;
      if (IsZipMap(info)) {
        binding = {TensorSpec{name, DataType::kFp32, {-1, -1}}, true};
      } else {
        auto spec = TensorSpecFromTypeInfo(name, info);
        if (!spec.ok()) {
          return spec.status().WithContext(
              "output (only tensors and ZipMap sequences of maps are supported)");
        }
        binding.spec = std::move(spec).value();
      }
      signature.outputs.push_back(binding.spec);
      outputs.push_back(std::move(binding));
    }
    return std::unique_ptr<Backend>(std::make_unique<OnnxRuntimeBackend>(
        std::move(session), std::move(signature), std::move(outputs)));
  }

  Ort::Env env_;
};

}  // namespace

std::unique_ptr<BackendFactory> CreateOnnxRuntimeFactory() {
  return std::make_unique<OnnxRuntimeFactory>();
}

}  // namespace berth
