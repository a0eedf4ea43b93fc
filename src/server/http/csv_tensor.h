// text/csv request bodies, SageMaker's usual content type for tabular data:
// one row of numbers per line, separated by commas, no header.
#pragma once

#include <string_view>

#include "core/status.h"
#include "core/tensor.h"

namespace berth::http {

// Parses `body` into a tensor named and typed after `spec`, which must be
// an FP32 or FP64 input of rank 2 ([-1, n] or [-1, -1]). The tensor has shape
// [lines, values per line]. Fields may be padded with spaces, lines may end
// in "\r\n", blank lines at the end are ignored. InvalidArgument, naming the
// line and field, for: an unsuitable `spec`, an empty body, a field that is
// not a number (a header line is one; so is a number followed by anything,
// a NUL or control byte, or a NaN with a payload, "nan(...)") or is beyond a
// double's range, a blank
// line between rows, lines of different widths, or a width other than the n
// of `spec`. Numbers are read as doubles and converted to the datatype, as
// JSON numbers are: an FP32 overflow becomes an infinity, which request
// validation refuses.
StatusOr<Tensor> ParseCsvTensor(std::string_view body, const TensorSpec& spec);

}  // namespace berth::http
