// Tensor data <-> JSON arrays, shared by every JSON protocol (v2, TF-Serving,
// the cloud routes).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/memorystream.h>
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
// <n>: <reason>"; an object that names a key twice is InvalidArgument
// "duplicate key '<key>' in the JSON object ending at offset <n>" (RFC 8259
// leaves the meaning of a repeated key open, and readers disagree on which
// value wins, so it is refused rather than guessed).
Status ParseJson(std::string_view json, rapidjson::Document* doc);

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                     rapidjson::CrtAllocator, rapidjson::kWriteNanAndInfFlag>;

// Writes `s` as a JSON string (it may hold NUL bytes).
inline void WriteJsonString(JsonWriter* w, std::string_view s) {
  w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// Receives the events of a JSON document from ReadJson: the member functions
// of a RapidJSON SAX handler, except that numbers arrive only as Int64 (when
// they fit), Uint64 (when they fit only that) or Double (read exactly).
// Returning false stops the reading; StopReason() then says why.
class JsonHandler {
 public:
  virtual ~JsonHandler() = default;
  virtual bool Null() = 0;
  virtual bool Bool(bool b) = 0;
  virtual bool Int64(int64_t i) = 0;
  virtual bool Uint64(uint64_t u) = 0;
  virtual bool Double(double d) = 0;
  virtual bool String(const char* s, rapidjson::SizeType n, bool copy) = 0;
  virtual bool StartObject() = 0;
  virtual bool Key(const char* s, rapidjson::SizeType n, bool copy) = 0;
  virtual bool EndObject(rapidjson::SizeType members) = 0;
  virtual bool StartArray() = 0;
  virtual bool EndArray(rapidjson::SizeType elements) = 0;
  virtual Status StopReason() const { return Status::Internal("JSON reading stopped"); }

 protected:
  // During an event, the offset in the document of the token being read:
  // the '[' or '{' in StartArray/StartObject, the ']' or '}' in
  // EndArray/EndObject, just past a scalar. 0 outside ReadJson.
  size_t Offset() const { return stream_ != nullptr ? stream_->Tell() : 0; }

 private:
  friend Status ReadJson(std::string_view json, JsonHandler* handler);
  const rapidjson::MemoryStream* stream_ = nullptr;
};

// The SAX form of ParseJson: reads `json` with the same flags, the same exact
// numbers and the same errors (malformed JSON, duplicate keys), handing each
// event to `handler` as it is read. Nothing of the document is built: memory
// stays proportional to the keys of the objects open at a time. Returns
// handler->StopReason() if the handler stopped the reading.
Status ReadJson(std::string_view json, JsonHandler* handler);

// Hands `value` to `handler` as ReadJson would have read it, except that
// inside an object only its members' scalar values are handed over (an array
// or object member is handed over empty): tensor data reads no deeper than
// {"b64": "..."}. Recurses once per level of array nesting: callers bound
// that depth first.
void ReplayJson(const rapidjson::Value& value, JsonHandler* handler);

// Writes one tensor's JSON `data`, delivered as SAX events, straight into the
// tensor: nothing of the document is kept but the tensor itself. Events follow
// ReadJson's handler (Int64/Uint64/Double for numbers); an object inside the
// data is one (wrongly typed) element, and what is inside it is ignored.
// Errors are collected while the events keep coming, and Finish() reports
// the first of, in this order: data nested deeper than 64 levels; (with
// kMatchShape) nesting that does not follow the shape; an element count
// other than the shape's; an element whose JSON type or range does not fit
// the datatype.
class JsonTensorBuilder final : public JsonHandler {
 public:
  enum class Nesting {
    // Arrays only group elements; any nesting of the right count is read in
    // row-major order (the row doors, whose per-row shape was already read
    // from the JSON).
    kFlatten,
    // KServe v2: `data` is one flat list of all elements, or lists nested
    // exactly as the shape: every list at depth d holds shape[d] entries,
    // lists down to the last dimension and values there. A bare value is
    // accepted for a one-element tensor.
    kMatchShape,
  };

  // `tensor` has its name, datatype and shape set, and no data; it must
  // outlive the builder. `max_elements` bounds the elements the data can hold
  // (e.g. the bytes left in the body, each element taking at least one): a
  // shape that needs more is never allocated, the data is only counted.
  // Storage is reserved, not touched, so memory grows only as elements come.
  JsonTensorBuilder(Tensor* tensor, Nesting nesting, int64_t max_elements);

  // Appending (kFlatten): for a tensor whose first dimension is not known
  // until the data ends (row formats). Elements are appended, storage grows
  // as they come (`reserve` elements reserved up front, best effort), the
  // tensor's shape is not consulted, and Finish() does not check the count:
  // the caller sets the shape once the count is known.
  struct Appending {
    int64_t reserve = 0;
  };
  JsonTensorBuilder(Tensor* tensor, Appending appending);

  // TF Serving's convention for binary strings: an element that is an
  // object with the one member {"b64": "<base64>"} is that string's decoded
  // bytes, for a BYTES tensor; for any other datatype it is an element of
  // the wrong type, and text that is not valid base64 is an element error.
  // Off by default (an object is then always a wrongly typed element). Call
  // before the first event.
  void set_base64_objects(bool on) { base64_objects_ = on; }

  // Elements seen so far.
  int64_t elements() const { return i_; }

  // Every event returns true: errors are kept for Finish().
  bool Null() override;
  bool Bool(bool b) override;
  bool Int64(int64_t i) override;
  bool Uint64(uint64_t u) override;
  bool Double(double d) override;
  bool String(const char* s, rapidjson::SizeType n, bool copy) override;
  bool StartObject() override;
  bool Key(const char* s, rapidjson::SizeType n, bool copy) override;
  bool EndObject(rapidjson::SizeType members) override;
  bool StartArray() override;
  bool EndArray(rapidjson::SizeType elements) override;

  // True once the data value (a bare value, or the outermost array or
  // object) has ended.
  bool done() const { return done_; }

  // The first error, in the order above; OK when the tensor is complete.
  Status Finish();

 private:
  struct ElementValue;
  void Element(const ElementValue& v);
  template <typename T>
  void Store(T value);
  template <typename T>
  void PutInt(const ElementValue& v);
  void Put(const ElementValue& v);
  void ElementError(std::string message);
  void ShapeError(std::string message);
  // "data[1][0]": the path of the value now starting (the newest index of
  // every open list).
  std::string Path(size_t depth) const;
  std::string Where() const;
  void Ended() { done_ = depth_ == 0 && object_depth_ == 0; }

  Tensor* t_;
  const Nesting nesting_;
  const bool appending_ = false;
  const int64_t n_;       // the shape's element count (-1: invalid shape)
  bool storing_ = false;  // storage reserved, and no error yet
  bool out_of_memory_ = false;
  int64_t i_ = 0;         // elements seen
  // Open lists: how many entries each has so far, outermost first.
  std::vector<int64_t> entries_;
  size_t depth_ = 0;         // open lists, also beyond kMaxNesting
  size_t object_depth_ = 0;  // open objects inside one element
  enum class Form { kUnknown, kFlat, kNested } form_ = Form::kUnknown;
  bool done_ = false;
  std::string nesting_error_, shape_error_, element_error_;
  // set_base64_objects: the element object being read, decided at its end.
  bool base64_objects_ = false;
  bool base64_form_ = false;  // so far, exactly {"b64": <string>}
  int64_t object_members_ = 0;
  std::string base64_text_;
  // A value inside the element object: it is not {"b64": <string>} unless
  // the value is the string of its one member.
  bool InObject(bool is_string = false);
};

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

// How a BYTES element is written. A JSON string holds only UTF-8 text, and
// a BYTES element may hold any bytes (an image, a serialised proto): written
// raw, they would make the whole response invalid JSON.
enum class BytesEncoding {
  // A JSON string. Every element must be valid UTF-8: the door checks with
  // CheckBytesAreText first and refuses the response otherwise (an element
  // that is not is written as null, keeping the document valid).
  kText,
  // A JSON string when the element is valid UTF-8, else {"b64": "<base64>"}
  // (RFC 4648 with padding): TF Serving's convention for binary strings.
  kTextOrBase64,
};

// OK iff every BYTES element of `tensors` is valid UTF-8, so that kText can
// write it. Otherwise FailedPrecondition naming the first such tensor and
// the element's flat index (never the bytes), followed by `remedy`: what the
// client can ask for instead.
Status CheckBytesAreText(std::span<const Tensor> tensors, std::string_view remedy);

// Standard base64 (RFC 4648, with padding).
std::string Base64Encode(std::string_view bytes);
// Its inverse; InvalidArgument for a length that is not a multiple of 4, a
// character outside the alphabet, or padding anywhere but at the end.
StatusOr<std::string> Base64Decode(std::string_view text);

// Writes the tensor's elements as one flat JSON array.
void WriteTensorData(const Tensor& tensor, JsonWriter* writer,
                     BytesEncoding bytes = BytesEncoding::kText);

// Writes the tensor's elements nested by its shape ([[..], [..]]).
void WriteTensorNested(const Tensor& tensor, JsonWriter* writer,
                       BytesEncoding bytes = BytesEncoding::kText);

// Writes one element (flat index `i`) as a JSON value.
void WriteTensorElement(const Tensor& tensor, int64_t i, JsonWriter* writer,
                        BytesEncoding bytes = BytesEncoding::kText);

}  // namespace berth::http
