// The backend boundary: the only interface through which the core runs a
// model. A backend adapter catches its engine's exceptions and returns Status.
//
//   BackendFactory::Load()  does the expensive work (read file, build session)
//   Backend::Execute()      runs one (possibly batched) set of inputs
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/inference_timings.h"
#include "core/model_config.h"
#include "core/status.h"
#include "core/tensor.h"

namespace berth {

// The inputs and outputs of a model as its file declares them.
struct ModelSignature {
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

// One loaded model version. Execute() is thread-safe.
class Backend {
 public:
  virtual ~Backend() = default;

  virtual const ModelSignature& signature() const = 0;

  // Runs the model. `inputs` have been validated against signature();
  // `output_names` is a non-empty subset of signature().outputs. On success
  // `outputs` holds one tensor per name, in order. `timings` (may be null)
  // gets the moments the engine's inputs were ready and its run returned;
  // a backend that cannot split its work may leave them unset.
  virtual Status Execute(std::span<const Tensor> inputs,
                         std::span<const std::string> output_names,
                         std::vector<Tensor>* outputs, BackendTimings* timings) = 0;
};

// Creates Backends of one kind (e.g. "onnx"). Thread-safe.
class BackendFactory {
 public:
  virtual ~BackendFactory() = default;

  // The value of `backend:` in a model config that selects this factory.
  virtual std::string_view name() const = 0;
  // The platform reported in model metadata, e.g. "onnxruntime_onnx".
  virtual std::string_view platform() const = 0;
  // The file a version directory must contain, e.g. "model.onnx".
  virtual std::string_view model_filename() const = 0;
  // The file a version directory of this model must contain: the config may
  // name it (the python backend's `python.model_file`).
  virtual std::string ModelFileFor(const ModelConfig& /*config*/) const {
    return std::string(model_filename());
  }

  virtual StatusOr<std::unique_ptr<Backend>> Load(const ModelConfig& config,
                                                  const std::filesystem::path& model_file) = 0;
};

}  // namespace berth
