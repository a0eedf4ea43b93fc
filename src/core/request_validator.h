// Checks an InferenceRequest against the model it targets before any engine
// sees it: every error a client can cause is caught here with a message that
// names the input and what was expected.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/inference_request.h"
#include "core/model.h"
#include "core/status.h"

namespace berth {

// InvalidArgument on: a missing, unknown or duplicate input; a datatype or
// shape that disagrees with the signature; data that does not fill the shape;
// a batch over max_batch_size; NaN/Infinity unless the model allows it; an
// unknown or duplicate requested output.
Status ValidateRequest(const Model& model, const InferenceRequest& request);

// The checks of an input's header that every decoder (REST JSON, REST
// binary, gRPC) runs before it reads the input's data, so that each door
// refuses the same header with the same message.
//
// The datatype named `datatype`; InvalidArgument "input '<input>' has
// unknown datatype '<datatype>'" if there is none.
StatusOr<DataType> InputDataType(const std::string& input, std::string_view datatype);
// InvalidArgument for a negative dimension, or a shape whose element count
// overflows int64.
Status CheckInputShape(const std::string& input, std::span<const int64_t> shape);

// The parameters whose type Berth (like Triton) relies on, checked by every
// decoder as it reads them: `binary_data` and `binary_data_output` must be
// booleans, `classification` and `timeout` (microseconds, as Triton's)
// non-negative integers. A value of another type
// is refused rather than silently taken for false or ignored; other keys are
// accepted. `where` names the object that holds the parameter, as the v2
// JSON form spells it ("parameters", "outputs[0].parameters").
Status CheckKnownParameter(const std::string& key, const ParameterValue& value,
                           const std::string& where);

}  // namespace berth
