#include "core/warmup.h"

#include "core/logging.h"
#include "core/request_validator.h"
#include "core/scheduler.h"

namespace berth {

StatusOr<std::vector<Tensor>> WarmupInputs(const Model& model) {
  if (!model.config.warmup.inputs.empty()) return model.config.warmup.inputs;
  std::vector<Tensor> inputs;
  inputs.reserve(model.signature.inputs.size());
  for (const TensorSpec& spec : model.signature.inputs) {
    std::vector<int64_t> shape = spec.shape;
    for (int64_t& d : shape) {
      if (d < 0) d = 1;
    }
    Tensor t(spec.name, spec.datatype, std::move(shape));
    // A signature's fixed dimensions come from the model file; Allocate
    // refuses a shape whose size overflows.
    RETURN_IF_ERROR(t.Allocate().WithContext("warm-up input '" + spec.name + "'"));
    inputs.push_back(std::move(t));
  }
  return inputs;
}

Status WarmUp(const Model& model) {
  if (model.config.warmup.count == 0) return Status::Ok();
  InferenceRequest request;
  request.model_name = model.name;
  request.model_version = std::to_string(model.version);
  request.id = "warmup";
  ASSIGN_OR_RETURN(request.inputs, WarmupInputs(model));
  RETURN_IF_ERROR(ValidateRequest(model, request));
  const bool generated = model.config.warmup.inputs.empty();
  for (int i = 0; i < model.config.warmup.count; ++i) {
    StatusOr<InferenceResponse> response = ExecuteRequest(model, request);
    if (response.ok()) continue;
    // Zeros and empty strings are not a valid input of every model (a
    // category encoder may refuse an unknown category): the engine refusing
    // the generated values says nothing against the version, and the run
    // still paid most of the first-run cost. A config's own request must
    // succeed.
    if (generated && response.status().code() == Status::Code::kInvalidArgument) {
      LOG_WARN("the generated warm-up request was refused; set warmup.inputs in the model's "
               "config to warm it with real values",
               {{"model", model.name},
                {"version", std::to_string(model.version)},
                {"error", response.status().message()}});
      return Status::Ok();
    }
    return response.status();
  }
  return Status::Ok();
}

}  // namespace berth
