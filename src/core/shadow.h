// Shadow traffic: a copy of a share of a model's requests also runs on
// another version, whose answers are compared with the live ones and never
// returned. What the comparison measures lives here, free of any I/O.
#pragma once

#include <cstdint>

#include "core/inference_request.h"

namespace berth {

struct ShadowComparison {
  // Every output both answers have agrees: integer, boolean and string
  // outputs (labels) exactly, floating-point ones within 1e-5 (absolute, or
  // relative to the live value's magnitude).
  bool agree = true;
  // Over the floating-point elements compared: the sum of |live - shadow|
  // and how many there were (their ratio is the mean absolute difference).
  double abs_difference_sum = 0;
  uint64_t float_elements = 0;
};

// Compares the outputs the two answers share by name; an output missing
// from the shadow's answer, or of another datatype or shape, disagrees.
ShadowComparison CompareOutputs(const InferenceResponse& live, const InferenceResponse& shadow);

// True for `percent` percent of calls (a thread-local generator).
bool ShadowDraw(int percent);

}  // namespace berth
