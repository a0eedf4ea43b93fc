// Tensor data <-> JSON arrays, shared by every JSON protocol (v2, TF-Serving,
// the cloud routes).
#pragma once

#include <span>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/status.h"
#include "core/tensor.h"

namespace berth::http {

// The parse flags every front end uses: NaN and Infinity literals are read
// (Python's json module writes them) so that validation can refuse them with
// a clear message instead of a parse error; the iterative parser keeps deep
// nesting ("[[[[..." in a request body) off the call stack; strings must be
// valid UTF-8, so that nothing echoed back (a request id, a BYTES value) can
// make a response invalid JSON. Prefer ParseJson(),
// which also reads numbers exactly.
constexpr unsigned kJsonParseFlags =
    rapidjson::kParseNanAndInfFlag | rapidjson::kParseIterativeFlag |
    rapidjson::kParseValidateEncodingFlag;

// Parses `json` into `doc` with kJsonParseFlags, converting every number to
// the nearest double (or the exact 64-bit integer) with std::from_chars.
// RapidJSON's own conversion is off by up to 3 ULP for about one in ten
// ordinary doubles, and its full-precision mode misreads zeros such as 0e-31
// as 1.2e-240. Malformed JSON is InvalidArgument "malformed JSON at offset
// <n>: <reason>".
Status ParseJson(std::string_view json, rapidjson::Document* doc);

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                     rapidjson::CrtAllocator, rapidjson::kWriteNanAndInfFlag>;

// Fills `tensor` (name, datatype and shape already set) from `data`, a flat or
// nested JSON array in row-major order (a bare scalar is accepted for a
// single-element tensor). Checks the element count against the shape before
// allocating, then each element's JSON type and range against the datatype.
// Nesting deeper than 64 levels is refused.
Status FillTensorFromJson(const rapidjson::Value& data, Tensor* tensor);

// As FillTensorFromJson, for data that arrives in pieces (e.g. one value per
// row of a row-format request): `parts`, in order, fill the tensor as if they
// were the elements of one array.
Status FillTensorFromJsonParts(std::span<const rapidjson::Value* const> parts, Tensor* tensor);

// Writes the tensor's elements as one flat JSON array.
void WriteTensorData(const Tensor& tensor, JsonWriter* writer);

// Writes the tensor's elements nested by its shape ([[..], [..]]).
void WriteTensorNested(const Tensor& tensor, JsonWriter* writer);

// Writes one element (flat index `i`) as a JSON value.
void WriteTensorElement(const Tensor& tensor, int64_t i, JsonWriter* writer);

}  // namespace berth::http
