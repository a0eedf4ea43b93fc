#include "server/http/json_tensor.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/float16.h"
#include "core/model_name.h"

namespace berth::http {
namespace {

// Keys of the objects open while a document is read, to refuse an object
// that names a key twice. The keys of all open objects share one buffer, so
// a deeply nested body costs a few words a level; an object's keys are
// compared when it ends, and dropped.
class DuplicateKeys {
 public:
  void StartObject() { frames_.push_back(keys_.size()); }
  void Key(const char* s, size_t n) {
    keys_.push_back({text_.size(), n});
    text_.append(s, n);
  }
  // A key that the object now ending names twice, or nullopt.
  std::optional<std::string_view> EndObject() {
    const size_t first = frames_.back();
    frames_.pop_back();
    std::optional<std::string_view> repeated;
    const size_t count = keys_.size() - first;
    auto key = [this](size_t k) {
      return std::string_view(text_).substr(keys_[k].offset, keys_[k].size);
    };
    if (count <= 16) {
      for (size_t a = first; a < keys_.size() && !repeated; ++a) {
        for (size_t b = a + 1; b < keys_.size(); ++b) {
          if (key(a) == key(b)) {
            repeated = key(a);
            break;
          }
        }
      }
    } else {
      std::vector<size_t> order(count);
      for (size_t k = 0; k < count; ++k) order[k] = first + k;
      std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
      for (size_t k = 1; k < count; ++k) {
        if (key(order[k - 1]) == key(order[k])) {
          repeated = key(order[k]);
          break;
        }
      }
    }
    if (repeated) {
      repeated_ = std::string(*repeated);
      repeated = repeated_;
    }
    if (first < keys_.size()) text_.resize(keys_[first].offset);
    keys_.resize(first);
    return repeated;
  }

 private:
  struct Entry {
    size_t offset;
    size_t size;
  };
  std::string text_;
  std::vector<Entry> keys_;
  std::vector<size_t> frames_;  // the index in keys_ of each open object's first key
  std::string repeated_;
};

// The handler a Reader sees: converts the numbers that
// kParseNumbersAsStringsFlag hands over as text, checks keys for duplicates,
// and forwards everything else to a JsonHandler.
class ExactEvents {
 public:
  ExactEvents(JsonHandler* out, const rapidjson::MemoryStream* stream)
      : out_(out), stream_(stream) {}

  const Status& duplicate() const { return duplicate_; }

  bool Null() { return out_->Null(); }
  bool Bool(bool b) { return out_->Bool(b); }
  bool Int(int i) { return out_->Int64(i); }
  bool Uint(unsigned u) { return out_->Uint64(u); }
  bool Int64(int64_t i) { return out_->Int64(i); }
  bool Uint64(uint64_t u) { return out_->Uint64(u); }
  bool Double(double d) { return out_->Double(d); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return out_->String(s, n, copy); }
  bool StartObject() {
    keys_.StartObject();
    return out_->StartObject();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    keys_.Key(s, n);
    return out_->Key(s, n, copy);
  }
  bool EndObject(rapidjson::SizeType members) {
    if (auto repeated = keys_.EndObject()) {
      constexpr size_t kShown = 64;
      std::string key(repeated->substr(0, kShown));
      if (repeated->size() > kShown) key += "...";
      duplicate_ = Status::InvalidArgument("duplicate key '" + key +
                                           "' in the JSON object ending at offset " +
                                           std::to_string(stream_->Tell()));
      return false;
    }
    return out_->EndObject(members);
  }
  bool StartArray() { return out_->StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return out_->EndArray(elements); }

  // `text` is a number the reader has validated (or NaN, Infinity,
  // -Infinity), NUL-terminated. Integers stay integers as long as they fit 64
  // bits, as RapidJSON itself keeps them.
  bool RawNumber(const char* text, rapidjson::SizeType n, bool) {
    const char* end = text + n;
    if (std::strpbrk(text, ".eEIN") == nullptr) {
      if (text[0] == '-') {
        int64_t i = 0;
        if (std::from_chars(text, end, i).ec == std::errc()) return out_->Int64(i);
      } else {
        uint64_t u = 0;
        if (std::from_chars(text, end, u).ec == std::errc()) return out_->Uint64(u);
      }
    }
    double d = 0;
    if (std::from_chars(text, end, d).ec != std::errc()) {
      // Out of range: strtod gives the C answer (+-0 on underflow, +-HUGE_VAL
      // on overflow), which is what the reader's own conversion gave.
      d = std::strtod(text, nullptr);
    }
    return out_->Double(d);
  }


 private:
  JsonHandler* out_;
  const rapidjson::MemoryStream* stream_;
  DuplicateKeys keys_;
  Status duplicate_;
};

// Builds a Document from ReadJson's events.
class DocumentHandler final : public JsonHandler {
 public:
  explicit DocumentHandler(rapidjson::Document* doc) : doc_(doc) {}
  bool Null() override { return doc_->Null(); }
  bool Bool(bool b) override { return doc_->Bool(b); }
  bool Int64(int64_t i) override { return doc_->Int64(i); }
  bool Uint64(uint64_t u) override { return doc_->Uint64(u); }
  bool Double(double d) override { return doc_->Double(d); }
  bool String(const char* s, rapidjson::SizeType n, bool copy) override {
    return doc_->String(s, n, copy);
  }
  bool StartObject() override { return doc_->StartObject(); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) override {
    return doc_->Key(s, n, copy);
  }
  bool EndObject(rapidjson::SizeType members) override { return doc_->EndObject(members); }
  bool StartArray() override { return doc_->StartArray(); }
  bool EndArray(rapidjson::SizeType elements) override { return doc_->EndArray(elements); }

 private:
  rapidjson::Document* doc_;
};

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

void WriteNested(const Tensor& t, size_t dim, int64_t* index, BytesEncoding bytes,
                 JsonWriter* w) {
  if (dim == t.shape().size()) {
    WriteTensorElement(t, (*index)++, w, bytes);
    return;
  }
  w->StartArray();
  for (int64_t i = 0; i < t.shape()[dim]; ++i) WriteNested(t, dim + 1, index, bytes, w);
  w->EndArray();
}

}  // namespace

Status ReadJson(std::string_view json, JsonHandler* handler) {
  rapidjson::MemoryStream bytes(json.data(), json.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(bytes);
  ExactEvents events(handler, &bytes);
  handler->stream_ = &bytes;
  rapidjson::Reader reader;
  const rapidjson::ParseResult result =
      reader.Parse<kJsonParseFlags | rapidjson::kParseNumbersAsStringsFlag>(in, events);
  handler->stream_ = nullptr;
  if (!result.IsError()) return Status::Ok();
  if (result.Code() == rapidjson::kParseErrorTermination) {
    if (!events.duplicate().ok()) return events.duplicate();
    Status reason = handler->StopReason();
    if (!reason.ok()) return reason;
  }
  return Status::InvalidArgument("malformed JSON at offset " + std::to_string(result.Offset()) +
                                 ": " + rapidjson::GetParseError_En(result.Code()));
}

Status ParseJson(std::string_view json, rapidjson::Document* doc) {
  Status status;
  auto generate = [json, &status](rapidjson::Document& document) {
    DocumentHandler handler(&document);
    status = ReadJson(json, &handler);
    return status.ok();
  };
  doc->Populate(generate);
  return status;
}

void ReplayJson(const rapidjson::Value& v, JsonHandler* b) {
  switch (v.GetType()) {
    case rapidjson::kNullType: b->Null(); return;
    case rapidjson::kFalseType: b->Bool(false); return;
    case rapidjson::kTrueType: b->Bool(true); return;
    case rapidjson::kStringType: b->String(v.GetString(), v.GetStringLength(), true); return;
    case rapidjson::kNumberType:
      if (v.IsInt64()) {
        b->Int64(v.GetInt64());
      } else if (v.IsUint64()) {
        b->Uint64(v.GetUint64());
      } else {
        b->Double(v.GetDouble());
      }
      return;
    case rapidjson::kObjectType:
      // Only the members' scalars, which is all tensor data reads (a
      // {"b64": "..."} element): the recursion follows only the arrays.
      b->StartObject();
      for (const auto& m : v.GetObject()) {
        b->Key(m.name.GetString(), m.name.GetStringLength(), true);
        if (m.value.IsArray()) {
          b->StartArray();
          b->EndArray(0);
        } else if (m.value.IsObject()) {
          b->StartObject();
          b->EndObject(0);
        } else {
          ReplayJson(m.value, b);
        }
      }
      b->EndObject(v.MemberCount());
      return;
    case rapidjson::kArrayType:
      b->StartArray();
      for (const auto& e : v.GetArray()) ReplayJson(e, b);
      b->EndArray(v.Size());
      return;
  }
}

// ---- JsonTensorBuilder -------------------------------------------------------

struct JsonTensorBuilder::ElementValue {
  // kBase64: {"b64": s}, with `s` the base64 text.
  enum Kind { kNull, kBool, kInt, kUint, kDouble, kString, kObject, kBase64 };
  explicit ElementValue(Kind k) : kind(k) {}

  Kind kind;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string_view s;

  const char* TypeName() const {
    switch (kind) {
      case kNull: return "null";
      case kBool: return "a boolean";
      case kString: return "a string";
      case kObject: return "an object";
      case kBase64: return "a {\"b64\": ...} binary string";
      case kInt:
      case kUint: return "an integer";
      case kDouble: break;
    }
    return "a number";
  }
  bool IsNumber() const { return kind == kInt || kind == kUint || kind == kDouble; }
  double AsDouble() const {
    if (kind == kInt) return static_cast<double>(i);
    if (kind == kUint) return static_cast<double>(u);
    return d;
  }
};

JsonTensorBuilder::JsonTensorBuilder(Tensor* tensor, Nesting nesting, int64_t max_elements)
    : t_(tensor), nesting_(nesting), n_(tensor->element_count()) {
  if (n_ < 0 || n_ > max_elements) return;  // counted only; Finish() says why
  const size_t n = static_cast<size_t>(n_);
  try {
    if (t_->datatype() == DataType::kBytes) {
      t_->strings().clear();
      t_->strings().reserve(n);
    } else {
      const size_t element = DataTypeByteSize(t_->datatype());
      if (element == 0 || n > static_cast<size_t>(PTRDIFF_MAX) / element) return;
      t_->bytes().clear();
      t_->bytes().reserve(n * element);
    }
    storing_ = true;
  } catch (const std::exception&) {  // bad_alloc, length_error: Finish() reports it
  }
}

JsonTensorBuilder::JsonTensorBuilder(Tensor* tensor, Appending appending)
    : t_(tensor),
      nesting_(Nesting::kFlatten),
      appending_(true),
      n_(std::numeric_limits<int64_t>::max()) {
  storing_ = true;
  if (appending.reserve <= 0) return;
  const auto n = static_cast<size_t>(appending.reserve);
  try {
    if (t_->datatype() == DataType::kBytes) {
      t_->strings().reserve(n);
    } else if (const size_t element = DataTypeByteSize(t_->datatype());
               element != 0 && n <= static_cast<size_t>(PTRDIFF_MAX) / element) {
      t_->bytes().reserve(n * element);
    }
  } catch (const std::exception&) {  // the storage grows instead
  }
}

std::string JsonTensorBuilder::Where() const { return "input '" + t_->name() + "'"; }

std::string JsonTensorBuilder::Path(size_t depth) const {
  std::string path = "data";
  for (size_t k = 0; k < depth && k < entries_.size(); ++k) {
    path += "[" + std::to_string(entries_[k] - 1) + "]";
  }
  return path;
}

void JsonTensorBuilder::ElementError(std::string message) {
  storing_ = false;
  if (element_error_.empty()) element_error_ = std::move(message);
}

void JsonTensorBuilder::ShapeError(std::string message) {
  storing_ = false;
  if (shape_error_.empty()) {
    shape_error_ = Where() + ": data does not match shape " + ShapeToString(t_->shape()) +
                   ": " + std::move(message) +
                   " (send lists nested exactly as the shape, or one flat list)";
  }
}

template <typename T>
void JsonTensorBuilder::Store(T value) {
  if (!storing_) return;
  auto& bytes = t_->bytes();
  const size_t at = bytes.size();
  try {
    bytes.resize(at + sizeof(T));  // within the reserved capacity, unless appending
  } catch (const std::exception&) {
    storing_ = false;
    if (element_error_.empty()) out_of_memory_ = true;
    return;
  }
  std::memcpy(bytes.data() + at, &value, sizeof(T));
}

// An integer that fits 64 bits but not T (e.g. 2^63 for INT64, -1 for any
// unsigned type) is out of range; anything else that is not an integer is a
// type error.
template <typename T>
void JsonTensorBuilder::PutInt(const ElementValue& v) {
  auto type_error = [&](const char* want) {
    ElementError(Where() + " is " + std::string(DataTypeName(t_->datatype())) + " but element " +
                 std::to_string(i_) + " is " + v.TypeName() + " (expected " + want + ")");
  };
  auto range_error = [&](const std::string& value) {
    ElementError(Where() + ": element " + std::to_string(i_) + " (" + value +
                 ") is out of range for " + std::string(DataTypeName(t_->datatype())));
  };
  if constexpr (std::numeric_limits<T>::is_signed) {
    if (v.kind != ElementValue::kInt) {
      if (v.kind == ElementValue::kUint) return range_error(std::to_string(v.u));
      return type_error("an integer");
    }
    if (v.i < std::numeric_limits<T>::min() || v.i > std::numeric_limits<T>::max()) {
      return range_error(std::to_string(v.i));
    }
    Store(static_cast<T>(v.i));
  } else {
    // A non-negative integer arrives as kInt when it fits int64.
    uint64_t x = 0;
    if (v.kind == ElementValue::kUint) {
      x = v.u;
    } else if (v.kind == ElementValue::kInt && v.i >= 0) {
      x = static_cast<uint64_t>(v.i);
    } else if (v.kind == ElementValue::kInt) {
      return range_error(std::to_string(v.i));
    } else {
      return type_error("a non-negative integer");
    }
    if (x > std::numeric_limits<T>::max()) return range_error(std::to_string(x));
    Store(static_cast<T>(x));
  }
}

void JsonTensorBuilder::Put(const ElementValue& v) {
  auto type_error = [&](const char* want) {
    ElementError(Where() + " is " + std::string(DataTypeName(t_->datatype())) + " but element " +
                 std::to_string(i_) + " is " + v.TypeName() + " (expected " + want + ")");
  };
  switch (t_->datatype()) {
    case DataType::kBool:
      if (v.kind != ElementValue::kBool) return type_error("true or false");
      return Store<uint8_t>(v.b ? 1 : 0);
    case DataType::kUint8: return PutInt<uint8_t>(v);
    case DataType::kUint16: return PutInt<uint16_t>(v);
    case DataType::kUint32: return PutInt<uint32_t>(v);
    case DataType::kUint64: return PutInt<uint64_t>(v);
    case DataType::kInt8: return PutInt<int8_t>(v);
    case DataType::kInt16: return PutInt<int16_t>(v);
    case DataType::kInt32: return PutInt<int32_t>(v);
    case DataType::kInt64: return PutInt<int64_t>(v);
    case DataType::kFp16:
      if (!v.IsNumber()) return type_error("a number");
      return Store(FloatToHalf(static_cast<float>(v.AsDouble())));
    case DataType::kFp32:
      if (!v.IsNumber()) return type_error("a number");
      return Store(static_cast<float>(v.AsDouble()));
    case DataType::kFp64:
      if (!v.IsNumber()) return type_error("a number");
      return Store(v.AsDouble());
    case DataType::kBytes: {
      if (v.kind != ElementValue::kString && v.kind != ElementValue::kBase64) {
        return type_error("a string");
      }
      std::string decoded;
      if (v.kind == ElementValue::kBase64) {
        auto bytes = Base64Decode(v.s);
        if (!bytes.ok()) {
          return ElementError(Where() + ": element " + std::to_string(i_) +
                              " is not valid base64: " + bytes.status().message());
        }
        decoded = std::move(*bytes);
      }
      if (!storing_) return;
      try {
        if (v.kind == ElementValue::kBase64) {
          t_->strings().push_back(std::move(decoded));
        } else {
          t_->strings().emplace_back(v.s);
        }
      } catch (const std::exception&) {
        storing_ = false;
        out_of_memory_ = true;
      }
      return;
    }
    case DataType::kInvalid: break;
  }
  ElementError(Where() + " has no valid datatype");
}

void JsonTensorBuilder::Element(const ElementValue& v) {
  if (depth_ > 0 && depth_ <= static_cast<size_t>(kMaxNesting)) {
    ++entries_.back();
    if (nesting_ == Nesting::kMatchShape) {
      if (depth_ == 1 && form_ == Form::kUnknown) form_ = Form::kFlat;
      const size_t rank = t_->shape().size();
      if (form_ == Form::kNested && depth_ < rank) {
        ShapeError(Path(depth_) + " is a value where a list of " +
                   std::to_string(t_->shape()[depth_]) + " is expected");
      }
    }
  }
  if (i_ >= n_) {
    storing_ = false;  // more elements than the shape: counted only
  } else {
    Put(v);
  }
  ++i_;
  Ended();
}

bool JsonTensorBuilder::InObject(bool is_string) {
  if (object_depth_ == 0) return false;
  // A string is the b64 text only as the value of the object's one member.
  if (object_depth_ > 1 || !is_string || object_members_ != 1) base64_form_ = false;
  return true;
}

bool JsonTensorBuilder::Null() {
  if (!InObject()) Element(ElementValue(ElementValue::kNull));
  return true;
}
bool JsonTensorBuilder::Bool(bool b) {
  if (InObject()) return true;
  ElementValue v(ElementValue::kBool);
  v.b = b;
  Element(v);
  return true;
}
bool JsonTensorBuilder::Int64(int64_t i) {
  if (InObject()) return true;
  ElementValue v(ElementValue::kInt);
  v.i = i;
  Element(v);
  return true;
}
bool JsonTensorBuilder::Uint64(uint64_t u) {
  // An integer that fits int64 is an int64, as RapidJSON's IsInt64() has it.
  if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Int64(static_cast<int64_t>(u));
  }
  if (InObject()) return true;
  ElementValue v(ElementValue::kUint);
  v.u = u;
  Element(v);
  return true;
}
bool JsonTensorBuilder::Double(double d) {
  if (InObject()) return true;
  ElementValue v(ElementValue::kDouble);
  v.d = d;
  Element(v);
  return true;
}
bool JsonTensorBuilder::String(const char* s, rapidjson::SizeType n, bool) {
  if (InObject(/*is_string=*/true)) {
    if (base64_objects_ && base64_form_) base64_text_.assign(s, n);
    return true;
  }
  ElementValue v(ElementValue::kString);
  v.s = std::string_view(s, n);
  Element(v);
  return true;
}
bool JsonTensorBuilder::Key(const char* s, rapidjson::SizeType n, bool) {
  if (object_depth_ == 1) {
    ++object_members_;
    if (std::string_view(s, n) != "b64") base64_form_ = false;
  }
  return true;
}

bool JsonTensorBuilder::StartObject() {
  if (InObject()) {
    ++object_depth_;
  } else if (base64_objects_) {
    // What the element is is known only when the object ends.
    object_depth_ = 1;
    base64_form_ = true;
    object_members_ = 0;
    base64_text_.clear();
  } else {
    object_depth_ = 1;
    Element(ElementValue(ElementValue::kObject));
  }
  return true;
}

bool JsonTensorBuilder::EndObject(rapidjson::SizeType) {
  if (object_depth_ == 0 || --object_depth_ > 0) return true;
  if (!base64_objects_) {
    Ended();
    return true;
  }
  const bool base64 = base64_form_ && object_members_ == 1;
  ElementValue v(base64 ? ElementValue::kBase64 : ElementValue::kObject);
  v.s = base64_text_;
  Element(v);
  return true;
}

bool JsonTensorBuilder::StartArray() {
  if (InObject()) {
    ++object_depth_;
    return true;
  }
  if (depth_ >= static_cast<size_t>(kMaxNesting)) {
    storing_ = false;
    if (nesting_error_.empty()) {
      nesting_error_ = Where() + ": data is nested deeper than " + std::to_string(kMaxNesting) +
                       " levels";
    }
    ++depth_;
    return true;
  }
  if (depth_ > 0) {
    ++entries_.back();
    if (nesting_ == Nesting::kMatchShape) {
      if (depth_ == 1 && form_ == Form::kUnknown) form_ = Form::kNested;
      const size_t rank = t_->shape().size();
      if (form_ == Form::kFlat) {
        ShapeError(Path(depth_) + " is a list inside a flat list");
      } else if (depth_ >= rank) {
        ShapeError(Path(depth_) + " is a list where a value is expected");
      }
    }
  }
  entries_.push_back(0);
  ++depth_;
  return true;
}

bool JsonTensorBuilder::EndArray(rapidjson::SizeType) {
  if (object_depth_ > 0) {
    if (--object_depth_ == 0) Ended();
    return true;
  }
  if (depth_ > static_cast<size_t>(kMaxNesting)) {
    --depth_;
    return true;
  }
  const int64_t entries = entries_.back();
  const size_t level = depth_ - 1;  // the dimension this list stands for
  if (nesting_ == Nesting::kMatchShape && form_ == Form::kNested &&
      level < t_->shape().size() && entries != t_->shape()[level]) {
    ShapeError(Path(level) + " has " + std::to_string(entries) + " entries where " +
               std::to_string(t_->shape()[level]) + " are expected");
  }
  entries_.pop_back();
  --depth_;
  Ended();
  return true;
}

Status JsonTensorBuilder::Finish() {
  if (n_ < 0) return t_->Allocate();  // reports the invalid shape
  if (!nesting_error_.empty()) return Status::InvalidArgument(nesting_error_);
  if (!shape_error_.empty()) return Status::InvalidArgument(shape_error_);
  if (!appending_ && i_ != n_) return Status::InvalidArgument(CountMessage(*t_, n_, i_));
  if (!element_error_.empty()) return Status::InvalidArgument(element_error_);
  if (!storing_ || out_of_memory_) {
    // The count is right, so it was within max_elements: memory ran out.
    return Status::ResourceExhausted("tensor '" + t_->name() + "' of shape " +
                                     ShapeToString(t_->shape()) + " does not fit in memory");
  }
  return Status::Ok();
}

Status FillTensorFromJson(const rapidjson::Value& data, Tensor* tensor) {
  const rapidjson::Value* parts[] = {&data};
  return FillTensorFromJsonParts(parts, tensor);
}

Status FillTensorFromJsonParts(std::span<const rapidjson::Value* const> parts, Tensor* tensor) {
  RETURN_IF_ERROR(CheckElementCount(parts, *tensor));
  if (tensor->element_count() < 0) return tensor->Allocate();  // reports the invalid shape
  JsonTensorBuilder builder(tensor, JsonTensorBuilder::Nesting::kFlatten,
                            tensor->element_count());
  // CheckElementCount has bounded the nesting, so the replay's recursion.
  for (const rapidjson::Value* part : parts) ReplayJson(*part, &builder);
  return builder.Finish();
}

Status CheckBytesAreText(std::span<const Tensor> tensors, std::string_view remedy) {
  for (const Tensor& t : tensors) {
    if (t.datatype() != DataType::kBytes) continue;
    const auto& strings = t.strings();
    for (size_t i = 0; i < strings.size(); ++i) {
      if (IsValidUtf8(strings[i])) continue;
      return Status::FailedPrecondition(
          "output '" + t.name() + "' holds a BYTES element that is not valid UTF-8 (flat index " +
          std::to_string(i) + "), which a JSON string cannot carry; " + std::string(remedy));
    }
  }
  return Status::Ok();
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                       static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

StatusOr<std::string> Base64Decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) {
    return Status::InvalidArgument("base64 text must be a multiple of 4 characters long (got " +
                                   std::to_string(text.size()) + ")");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const size_t pad = !last ? 0 : text[i + 3] != '=' ? 0 : text[i + 2] != '=' ? 1 : 2;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int d = k < 4 - pad ? value(text[i + k]) : 0;
      if (d < 0) {
        return Status::InvalidArgument("base64 text has an invalid character at offset " +
                                       std::to_string(i + k));
      }
      v = v << 6 | static_cast<uint32_t>(d);
    }
    out += static_cast<char>(v >> 16);
    if (pad < 2) out += static_cast<char>((v >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(v & 0xff);
  }
  return out;
}

void WriteTensorElement(const Tensor& t, int64_t i, JsonWriter* w, BytesEncoding bytes) {
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
      if (IsValidUtf8(s)) {
        WriteJsonString(w, s);
      } else if (bytes == BytesEncoding::kTextOrBase64) {
        w->StartObject();
        w->Key("b64");
        WriteJsonString(w, Base64Encode(s));
        w->EndObject();
      } else {
        w->Null();  // the door's CheckBytesAreText refuses this response
      }
      return;
    }
    case DataType::kInvalid: w->Null(); return;
  }
}

void WriteTensorData(const Tensor& t, JsonWriter* w, BytesEncoding bytes) {
  w->StartArray();
  const int64_t n = t.element_count();
  for (int64_t i = 0; i < n; ++i) WriteTensorElement(t, i, w, bytes);
  w->EndArray();
}

void WriteTensorNested(const Tensor& t, JsonWriter* w, BytesEncoding bytes) {
  int64_t index = 0;
  WriteNested(t, 0, &index, bytes, w);
}

}  // namespace berth::http
