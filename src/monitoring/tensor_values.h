// Reading single elements of a decoded tensor as numbers, for the monitors
// that follow requests' values (drift/, feedback/).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace berth {

// Element `i` of a fixed-size tensor as a double; NaN for BYTES. The caller
// checked that the tensor holds at least i + 1 elements.
double ElementAsDouble(const Tensor& t, int64_t i);

// Whether `t` holds integers (BOOL included), not floating point or BYTES.
bool IsIntegerType(DataType t);

}  // namespace berth
