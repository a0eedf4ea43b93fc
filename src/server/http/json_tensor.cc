#include "server/http/json_tensor.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "core/float16.h"

namespace berth::http {
namespace {

// Forwards a Reader's SAX events to a Document, converting the numbers that
// kParseNumbersAsStringsFlag hands over as text.
class ExactNumbers {
 public:
  explicit ExactNumbers(rapidjson::Document* doc) : doc_(doc) {}

  bool Null() { return doc_->Null(); }
  bool Bool(bool b) { return doc_->Bool(b); }
  bool Int(int i) { return doc_->Int(i); }
  bool Uint(unsigned u) { return doc_->Uint(u); }
  bool Int64(int64_t i) { return doc_->Int64(i); }
  bool Uint64(uint64_t u) { return doc_->Uint64(u); }
  bool Double(double d) { return doc_->Double(d); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc_->String(s, n, copy); }
  bool StartObject() { return doc_->StartObject(); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc_->Key(s, n, copy); }
  bool EndObject(rapidjson::SizeType members) { return doc_->EndObject(members); }
  bool StartArray() { return doc_->StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return doc_->EndArray(elements); }

  // `text` is a number the reader has validated (or NaN, Infinity,
  // -Infinity), NUL-terminated. Integers stay integers as long as they fit 64
  // bits, as RapidJSON itself keeps them.
  bool RawNumber(const char* text, rapidjson::SizeType n, bool) {
    const char* end = text + n;
    if (std::strpbrk(text, ".eEIN") == nullptr) {
      if (text[0] == '-') {
        int64_t i = 0;
        if (std::from_chars(text, end, i).ec == std::errc()) return doc_->Int64(i);
      } else {
        uint64_t u = 0;
        if (std::from_chars(text, end, u).ec == std::errc()) return doc_->Uint64(u);
      }
    }
    double d = 0;
    if (std::from_chars(text, end, d).ec != std::errc()) {
      // Out of range: strtod gives the C answer (+-0 on underflow, +-HUGE_VAL
      // on overflow), which is what the reader's own conversion gave.
      d = std::strtod(text, nullptr);
    }
    return doc_->Double(d);
  }

 private:
  rapidjson::Document* doc_;
};

const char* JsonTypeName(const rapidjson::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "a boolean";
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "an array";
  if (v.IsObject()) return "an object";
  if (v.IsInt64() || v.IsUint64()) return "an integer";
  return "a number";
}

// Nesting deeper than this is refused before the data is walked (the walk
// recurses once per level); no tensor has a rank anywhere near it.
constexpr int kMaxNesting = 64;

// The number of scalar leaves under `v`, counting stops once past `limit`;
// -1 when the nesting is deeper than kMaxNesting.
int64_t CountLeaves(const rapidjson::Value& v, int64_t limit, int depth = 0) {
  if (!v.IsArray()) return 1;
  if (depth >= kMaxNesting) return -1;
  int64_t n = 0;
  for (const auto& e : v.GetArray()) {
    const int64_t c = CountLeaves(e, limit - n, depth + 1);
    if (c < 0) return -1;
    n += c;
    if (n > limit) break;
  }
  return n;
}

std::string CountMessage(const Tensor& t, int64_t want, int64_t got) {
  return "input '" + t.name() + "': shape " + ShapeToString(t.shape()) + " needs " +
         std::to_string(want) + " elements, but data has " +
         (got > want ? "more" : std::to_string(got));
}

// Checks, before anything is allocated, that `parts` hold exactly as many
// elements as the tensor's shape needs: a request naming a huge shape with
// little data must not allocate the shape.
Status CheckElementCount(std::span<const rapidjson::Value* const> parts, const Tensor& t) {
  const int64_t want = t.element_count();
  if (want < 0) return Status::Ok();  // Allocate() reports the invalid shape
  int64_t got = 0;
  for (const rapidjson::Value* part : parts) {
    const int64_t c = CountLeaves(*part, want - got);
    if (c < 0) {
      return Status::InvalidArgument("input '" + t.name() + "': data is nested deeper than " +
                                     std::to_string(kMaxNesting) + " levels");
    }
    got += c;
    if (got > want) break;
  }
  if (got != want) return Status::InvalidArgument(CountMessage(t, want, got));
  return Status::Ok();
}

class Filler {
 public:
  explicit Filler(Tensor* t) : t_(t), n_(t->element_count()) {}

  Status Walk(const rapidjson::Value& v) {
    if (v.IsArray()) {
      for (const auto& e : v.GetArray()) RETURN_IF_ERROR(Walk(e));
      return Status::Ok();
    }
    if (i_ >= n_) return CountError(i_ + 1);
    RETURN_IF_ERROR(Put(v));
    ++i_;
    return Status::Ok();
  }

  Status Finish() const { return i_ == n_ ? Status::Ok() : CountError(i_); }

 private:
  Status CountError(int64_t got) const {
    return Status::InvalidArgument(CountMessage(*t_, n_, got));
  }

  Status TypeError(const rapidjson::Value& v, const char* want) const {
    return Status::InvalidArgument("input '" + t_->name() + "' is " +
                                   std::string(DataTypeName(t_->datatype())) + " but element " +
                                   std::to_string(i_) + " is " + JsonTypeName(v) + " (expected " +
                                   want + ")");
  }

  Status RangeError(const std::string& value) const {
    return Status::InvalidArgument("input '" + t_->name() + "': element " + std::to_string(i_) +
                                   " (" + value + ") is out of range for " +
                                   std::string(DataTypeName(t_->datatype())));
  }

  // An integer that fits 64 bits but not T (e.g. 2^63 for INT64, -1 for any
  // unsigned type) is out of range; anything else that is not an integer is a
  // type error.
  template <typename T>
  Status PutInt(const rapidjson::Value& v) {
    if constexpr (std::numeric_limits<T>::is_signed) {
      if (!v.IsInt64()) {
        if (v.IsUint64()) return RangeError(std::to_string(v.GetUint64()));
        return TypeError(v, "an integer");
      }
      const int64_t x = v.GetInt64();
      if (x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max()) {
        return RangeError(std::to_string(x));
      }
      t_->data<T>()[i_] = static_cast<T>(x);
    } else {
      if (!v.IsUint64()) {
        if (v.IsInt64()) return RangeError(std::to_string(v.GetInt64()));
        return TypeError(v, "a non-negative integer");
      }
      const uint64_t x = v.GetUint64();
      if (x > std::numeric_limits<T>::max()) return RangeError(std::to_string(x));
      t_->data<T>()[i_] = static_cast<T>(x);
    }
    return Status::Ok();
  }

  Status Put(const rapidjson::Value& v) {
    switch (t_->datatype()) {
      case DataType::kBool:
        if (!v.IsBool()) return TypeError(v, "true or false");
        t_->data<uint8_t>()[i_] = v.GetBool() ? 1 : 0;
        return Status::Ok();
      case DataType::kUint8: return PutInt<uint8_t>(v);
      case DataType::kUint16: return PutInt<uint16_t>(v);
      case DataType::kUint32: return PutInt<uint32_t>(v);
      case DataType::kUint64: return PutInt<uint64_t>(v);
      case DataType::kInt8: return PutInt<int8_t>(v);
      case DataType::kInt16: return PutInt<int16_t>(v);
      case DataType::kInt32: return PutInt<int32_t>(v);
      case DataType::kInt64: return PutInt<int64_t>(v);
      case DataType::kFp16:
        if (!v.IsNumber()) return TypeError(v, "a number");
        t_->data<uint16_t>()[i_] = FloatToHalf(static_cast<float>(v.GetDouble()));
        return Status::Ok();
      case DataType::kFp32:
        if (!v.IsNumber()) return TypeError(v, "a number");
        t_->data<float>()[i_] = static_cast<float>(v.GetDouble());
        return Status::Ok();
      case DataType::kFp64:
        if (!v.IsNumber()) return TypeError(v, "a number");
        t_->data<double>()[i_] = v.GetDouble();
        return Status::Ok();
      case DataType::kBytes:
        if (!v.IsString()) return TypeError(v, "a string");
        t_->strings()[i_].assign(v.GetString(), v.GetStringLength());
        return Status::Ok();
      case DataType::kInvalid: break;
    }
    return Status::InvalidArgument("input '" + t_->name() + "' has no valid datatype");
  }

  Tensor* t_;
  const int64_t n_;
  int64_t i_ = 0;
};

void WriteFloat(float f, JsonWriter* w) {
  if (!std::isfinite(f)) {
    w->Double(f);
    return;
  }
  if (f == 0.0f && std::signbit(f)) {
    // to_chars writes "-0", which JSON readers (RapidJSON, Python) take for
    // the integer 0 and so lose the sign.
    w->RawValue("-0.0", 4, rapidjson::kNumberType);
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), f);
  w->RawValue(buf, static_cast<size_t>(end - buf), rapidjson::kNumberType);
}

void WriteNested(const Tensor& t, size_t dim, int64_t* index, JsonWriter* w) {
  if (dim == t.shape().size()) {
    WriteTensorElement(t, (*index)++, w);
    return;
  }
  w->StartArray();
  for (int64_t i = 0; i < t.shape()[dim]; ++i) WriteNested(t, dim + 1, index, w);
  w->EndArray();
}

}  // namespace

Status ParseJson(std::string_view json, rapidjson::Document* doc) {
  rapidjson::ParseResult result;
  auto generate = [json, &result](rapidjson::Document& handler) {
    rapidjson::MemoryStream bytes(json.data(), json.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(bytes);
    ExactNumbers exact(&handler);
    rapidjson::Reader reader;
    result = reader.Parse<kJsonParseFlags | rapidjson::kParseNumbersAsStringsFlag>(in, exact);
    return !result.IsError();
  };
  doc->Populate(generate);
  if (result.IsError()) {
    return Status::InvalidArgument("malformed JSON at offset " + std::to_string(result.Offset()) +
                                   ": " + rapidjson::GetParseError_En(result.Code()));
  }
  return Status::Ok();
}

Status FillTensorFromJson(const rapidjson::Value& data, Tensor* tensor) {
  const rapidjson::Value* parts[] = {&data};
  RETURN_IF_ERROR(CheckElementCount(parts, *tensor));
  RETURN_IF_ERROR(tensor->Allocate());
  Filler filler(tensor);
  RETURN_IF_ERROR(filler.Walk(data));
  return filler.Finish();
}

Status FillTensorFromJsonParts(std::span<const rapidjson::Value* const> parts, Tensor* tensor) {
  RETURN_IF_ERROR(CheckElementCount(parts, *tensor));
  RETURN_IF_ERROR(tensor->Allocate());
  Filler filler(tensor);
  for (const rapidjson::Value* part : parts) RETURN_IF_ERROR(filler.Walk(*part));
  return filler.Finish();
}

void WriteTensorElement(const Tensor& t, int64_t i, JsonWriter* w) {
  switch (t.datatype()) {
    case DataType::kBool: w->Bool(t.data<uint8_t>()[i] != 0); return;
    case DataType::kUint8: w->Uint(t.data<uint8_t>()[i]); return;
    case DataType::kUint16: w->Uint(t.data<uint16_t>()[i]); return;
    case DataType::kUint32: w->Uint(t.data<uint32_t>()[i]); return;
    case DataType::kUint64: w->Uint64(t.data<uint64_t>()[i]); return;
    case DataType::kInt8: w->Int(t.data<int8_t>()[i]); return;
    case DataType::kInt16: w->Int(t.data<int16_t>()[i]); return;
    case DataType::kInt32: w->Int(t.data<int32_t>()[i]); return;
    case DataType::kInt64: w->Int64(t.data<int64_t>()[i]); return;
    case DataType::kFp16: WriteFloat(HalfToFloat(t.data<uint16_t>()[i]), w); return;
    case DataType::kFp32: WriteFloat(t.data<float>()[i], w); return;
    case DataType::kFp64: w->Double(t.data<double>()[i]); return;
    case DataType::kBytes: {
      const std::string& s = t.strings()[i];
      w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
      return;
    }
    case DataType::kInvalid: w->Null(); return;
  }
}

void WriteTensorData(const Tensor& t, JsonWriter* w) {
  w->StartArray();
  const int64_t n = t.element_count();
  for (int64_t i = 0; i < n; ++i) WriteTensorElement(t, i, w);
  w->EndArray();
}

void WriteTensorNested(const Tensor& t, JsonWriter* w) {
  int64_t index = 0;
  WriteNested(t, 0, &index, w);
}

}  // namespace berth::http
