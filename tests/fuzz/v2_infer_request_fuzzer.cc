// Fuzz target: the body of a v2 REST infer request (http::ParseV2InferRequest).
//
// The input up to its first NUL byte is the JSON document; the bytes after
// it are the binary part of the binary tensor extension. Beyond not crashing,
// a request that parses must hold consistent tensors, and writing its inputs
// back out as JSON must parse to the same tensors (the writer is lossless).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/float16.h"
#include "core/model_name.h"
#include "core/raw_tensor.h"
#include "server/http/json_tensor.h"
#include "server/http/v2_json_codec.h"

namespace {

using berth::DataType;
using berth::Tensor;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "invariant broken: %s\n", what.c_str());
  std::abort();
}

// True if element `i` of `a` and `b` are equal, NaN equal to NaN.
bool SameElement(const Tensor& a, const Tensor& b, int64_t i) {
  switch (a.datatype()) {
    case DataType::kFp16: {
      const float x = berth::HalfToFloat(a.data<uint16_t>()[i]);
      const float y = berth::HalfToFloat(b.data<uint16_t>()[i]);
      if (std::isnan(x)) return std::isnan(y);
      return a.data<uint16_t>()[i] == b.data<uint16_t>()[i];
    }
    case DataType::kFp32: {
      const float x = a.data<float>()[i], y = b.data<float>()[i];
      if (std::isnan(x)) return std::isnan(y);
      return x == y && std::signbit(x) == std::signbit(y);
    }
    case DataType::kFp64: {
      const double x = a.data<double>()[i], y = b.data<double>()[i];
      if (std::isnan(x)) return std::isnan(y);
      return x == y && std::signbit(x) == std::signbit(y);
    }
    case DataType::kBytes: return a.strings()[i] == b.strings()[i];
    default: {
      const size_t n = berth::DataTypeByteSize(a.datatype());
      return std::equal(a.bytes().begin() + i * n, a.bytes().begin() + (i + 1) * n,
                        b.bytes().begin() + i * n);
    }
  }
}

// {"inputs": [{"name", "datatype", "shape", "data"}...]} for `request`'s inputs.
std::string WriteInputsAsJson(const berth::InferenceRequest& request) {
  rapidjson::StringBuffer buf;
  berth::http::JsonWriter w(buf);
  w.StartObject();
  w.Key("inputs");
  w.StartArray();
  for (const Tensor& t : request.inputs) {
    w.StartObject();
    w.Key("name");
    w.String(t.name().data(), static_cast<rapidjson::SizeType>(t.name().size()));
    w.Key("datatype");
    const std::string_view dt = berth::DataTypeName(t.datatype());
    w.String(dt.data(), static_cast<rapidjson::SizeType>(dt.size()));
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape()) w.Int64(d);
    w.EndArray();
    w.Key("data");
    berth::http::WriteTensorData(t, &w);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string_view json = input.substr(0, split);
  const std::string_view binary =
      split == std::string_view::npos ? std::string_view() : input.substr(split + 1);

  auto parsed = berth::http::ParseV2InferRequest(json, binary);
  if (!parsed.ok()) {
    if (parsed.status().code() != berth::Status::Code::kInvalidArgument &&
        parsed.status().code() != berth::Status::Code::kUnimplemented) {
      Fail("a bad request must be INVALID_ARGUMENT or UNIMPLEMENTED: " +
           parsed.status().ToString());
    }
    return 0;
  }
  const berth::InferenceRequest& request = **parsed;
  for (const Tensor& t : request.inputs) {
    berth::Status s = t.CheckConsistent();
    if (!s.ok()) Fail("parsed tensor is inconsistent: " + s.ToString());
  }

  // Echoed as JSON, the inputs are either valid JSON or, when a BYTES
  // element is not UTF-8 (binary data may hold any bytes), refused.
  berth::InferenceResponse echo;
  echo.outputs = request.inputs;
  auto as_json = berth::http::WriteV2InferResponse(echo);
  bool all_text = true;
  for (const Tensor& t : request.inputs) {
    for (const std::string& s : t.strings()) all_text = all_text && berth::IsValidUtf8(s);
  }
  if (as_json.ok() != all_text) Fail("JSON response refused iff a BYTES element is not UTF-8");
  if (!as_json.ok()) {
    if (as_json.status().code() != berth::Status::Code::kFailedPrecondition) {
      Fail("a BYTES output that is not UTF-8 must be FAILED_PRECONDITION");
    }
    return 0;  // only UTF-8 text can make the JSON round trip
  }
  rapidjson::Document doc;
  if (!berth::http::ParseJson(as_json->body, &doc).ok()) Fail("JSON response does not parse");
  auto again = berth::http::ParseV2InferRequest(WriteInputsAsJson(request));
  if (!again.ok()) Fail("re-encoded request does not parse: " + again.status().ToString());
  const auto& inputs = (*again)->inputs;
  if (inputs.size() != request.inputs.size()) Fail("re-encoded request lost inputs");
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& a = request.inputs[k];
    const Tensor& b = inputs[k];
    if (a.name() != b.name() || a.datatype() != b.datatype() || a.shape() != b.shape()) {
      Fail("re-encoded input " + std::to_string(k) + " differs in name, datatype or shape");
    }
    for (int64_t i = 0; i < a.element_count(); ++i) {
      if (!SameElement(a, b, i)) {
        Fail("input '" + a.name() + "' element " + std::to_string(i) + " changed in a round trip");
      }
    }
  }

  berth::InferenceResponse response;
  response.outputs = request.inputs;
  berth::http::BinaryOutputs all;
  all.all = true;
  auto encoded = berth::http::WriteV2InferResponse(response, all);
  if (!encoded.ok()) Fail("a binary response cannot fail: " + encoded.status().ToString());
  size_t raw = 0;
  for (const Tensor& t : response.outputs) raw += berth::RawByteSize(t);
  if (encoded->body.size() != encoded->json_size + raw) Fail("binary response has the wrong size");
  berth::http::BinaryOutputsOf(request);
  return 0;
}
