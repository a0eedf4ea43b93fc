// Warm-up: the requests a freshly loaded version runs before it is
// published. The first run of an ONNX Runtime session allocates its arenas
// and plans its kernels; paying that here keeps it off the first client's
// request, and a version that cannot answer even this is never switched to.
#pragma once

#include <vector>

#include "core/inference_request.h"
#include "core/model.h"
#include "core/status.h"

namespace berth {

// The warm-up request's inputs for `model`: its config's warmup.inputs when
// given, else one tensor per input of its signature, each variable (-1)
// dimension set to 1, holding zeros (empty strings for BYTES).
StatusOr<std::vector<Tensor>> WarmupInputs(const Model& model);

// Runs the warm-up request config.warmup.count times on `model`'s backend,
// on the calling thread (the model is not published yet, so its scheduler
// has no one to serve). The request is checked as a client's is
// (ValidateRequest): a config warm-up input of the wrong shape fails here
// with the validator's message. OK when the count is 0. When the request is
// the generated one, the engine refusing its values (InvalidArgument: zeros
// are not a valid input of every model) is logged, not a failure; an
// engine fault (Internal) is one.
Status WarmUp(const Model& model);

}  // namespace berth
