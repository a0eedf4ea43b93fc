#include "core/model_name.h"

#include <cstdint>

namespace berth {
namespace {

// The length of the valid UTF-8 sequence starting at `s[i]`, or 0 if it is
// invalid (overlong forms, surrogates and code points past U+10FFFF included).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinForLength[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7F; }

}  // namespace

bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string PrintableExcerpt(std::string_view text, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < text.size() && out.size() < max_bytes) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0 || (n == 1 && IsControl(static_cast<unsigned char>(text[i])))) {
      out.push_back('?');
      ++i;
      continue;
    }
    out.append(text.substr(i, n));
    i += n;
  }
  if (i < text.size()) out += "...";
  return out;
}

Status ValidateModelName(std::string_view name) {
  const auto invalid = [&](const std::string& why) {
    return Status::InvalidArgument("invalid model name '" + PrintableExcerpt(name) + "': " + why);
  };
  if (name.empty()) return Status::InvalidArgument("invalid model name: it is empty");
  if (name.size() > kMaxModelNameBytes) {
    return invalid("it is " + std::to_string(name.size()) + " bytes long; the limit is " +
                   std::to_string(kMaxModelNameBytes));
  }
  if (name[0] == '.') return invalid("it starts with '.'");
  for (size_t i = 0; i < name.size();) {
    const size_t n = Utf8SequenceLength(name, i);
    if (n == 0) return invalid("it is not valid UTF-8");
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (n == 1 && IsControl(c)) return invalid("it contains a control character");
    if (c == '/' || c == '\\') return invalid("it contains a path separator");
    i += n;
  }
  return Status::Ok();
}

}  // namespace berth
