// ParseExactNumbers: rapidjson's Document::Parse with every number converted
// by std::from_chars (correctly rounded) instead of rapidjson's own
// full-precision conversion.
//
// Why: RapidJSON 1.1.0 (Debian's package) reads a zero with a large exponent
// wrongly under kParseFullPrecisionFlag: its DiyFp::Normalize calls
// __builtin_clzll(0), whose result is undefined, so "0e-100" came back as
// 1.0e31 and "0e308" as -6.1e-269 (found by the baseline fuzz target under
// UBSan). Fixed upstream after 1.1.0. Numbers here come out as rapidjson
// gives them otherwise: non-negative integers as Uint (Uint64 above 32
// bits), negative ones as Int (Int64), anything else, or an integer beyond
// 64 bits, as Double; a number beyond double's range is a parse error, as
// rapidjson's kParseErrorNumberTooBig is.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/encodedstream.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <charconv>
#include <cstdint>
#include <limits>
#include <string_view>

namespace berth {
namespace json_internal {

// Forwards a Reader's events to a Document (its SAX handler), converting the
// numbers the Reader hands over as text (kParseNumbersAsStringsFlag).
class ExactNumbers {
 public:
  using Ch = char;
  explicit ExactNumbers(rapidjson::Document& doc) : doc_(doc) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool String(const Ch* s, rapidjson::SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool StartObject() { return doc_.StartObject(); }
  bool Key(const Ch* s, rapidjson::SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool EndObject(rapidjson::SizeType members) { return doc_.EndObject(members); }
  bool StartArray() { return doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return doc_.EndArray(elements); }

  // `text` is a JSON number the Reader has checked (or NaN/Infinity under
  // kParseNanAndInfFlag, which from_chars reads too).
  bool RawNumber(const Ch* s, rapidjson::SizeType n, bool) {
    const std::string_view text(s, n);
    const char* end = text.data() + text.size();
    if (text.find_first_of(".eEIN") == std::string_view::npos) {
      if (text.front() == '-') {
        int64_t i = 0;
        auto [p, ec] = std::from_chars(text.data(), end, i);
        if (ec == std::errc() && p == end) {
          return i >= std::numeric_limits<int>::min() ? doc_.Int(static_cast<int>(i))
                                                      : doc_.Int64(i);
        }
      } else {
        uint64_t u = 0;
        auto [p, ec] = std::from_chars(text.data(), end, u);
        if (ec == std::errc() && p == end) {
          return u <= std::numeric_limits<unsigned>::max() ? doc_.Uint(static_cast<unsigned>(u))
                                                           : doc_.Uint64(u);
        }
      }
    }
    double d = 0;
    auto [p, ec] = std::from_chars(text.data(), end, d);
    // Out of range: an underflow is a zero (or the nearest subnormal), as
    // rapidjson reads it; an overflow is refused.
    if (ec == std::errc::result_out_of_range && text.find_first_of("eE") != std::string_view::npos &&
        text[text.find_first_of("eE") + 1] == '-') {
      return doc_.Double(text.front() == '-' ? -0.0 : 0.0);
    }
    if (ec != std::errc() || p != end) return false;
    return doc_.Double(d);
  }

 private:
  rapidjson::Document& doc_;
};

}  // namespace json_internal

// Parses `json` into `doc` as doc.Parse<kFlags | kParseFullPrecisionFlag>
// would, numbers exactly (see above). Returns what doc.GetParseError() then
// says; a number beyond double's range is kParseErrorTermination.
template <unsigned kFlags>
rapidjson::ParseResult ParseExactNumbers(std::string_view json, rapidjson::Document* doc) {
  rapidjson::ParseResult result;
  auto generate = [&](rapidjson::Document& d) {
    json_internal::ExactNumbers handler(d);
    rapidjson::MemoryStream bytes(json.data(), json.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(bytes);
    rapidjson::Reader reader;
    result = reader.Parse<kFlags | rapidjson::kParseNumbersAsStringsFlag>(stream, handler);
    return !result.IsError();
  };
  doc->Populate(generate);
  return result;
}

}  // namespace berth
