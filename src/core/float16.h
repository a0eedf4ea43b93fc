// IEEE 754 binary16 <-> binary32 conversion (round to nearest even).
// Used by the front ends to move FP16 tensors through JSON.
#pragma once

#include <cstdint>

namespace berth {

uint16_t FloatToHalf(float value);
float HalfToFloat(uint16_t half);

}  // namespace berth
