#include "core/byte_size.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "core/model_name.h"

namespace berth {

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", value, kUnits[unit]);
  return text;
}

StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  const auto bad = [text] {
    return Status::InvalidArgument("'" + PrintableExcerpt(text) +
                                   "' is not a size: expected bytes, or a number with K, M, G "
                                   "or T (e.g. 512M, 1.5G)");
  };
  std::string_view unit = text;
  size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  const std::string_view number = text.substr(0, digits);
  unit = text.substr(digits);
  if (number.empty() || number.front() == '.' || number.back() == '.') return bad();
  std::string lower;
  for (char c : unit) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int shift = 0;
  if (!lower.empty()) {
    static constexpr std::pair<char, int> kShifts[] = {{'k', 10}, {'m', 20}, {'g', 30}, {'t', 40}};
    bool known = false;
    for (const auto& [letter, bits] : kShifts) {
      if (lower[0] == letter) {
        shift = bits;
        known = true;
      }
    }
    const std::string_view rest = std::string_view(lower).substr(1);
    if (!known || !(rest.empty() || rest == "b" || rest == "ib")) return bad();
  } else if (number.find('.') != std::string_view::npos) {
    return bad();  // a fraction of a byte
  }
  if (number.find('.') == std::string_view::npos) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc() || end != number.data() + number.size()) return bad();
    if (shift > 0 && value > (UINT64_MAX >> shift)) return bad();
    return value << shift;
  }
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) return bad();
  const double bytes = std::ldexp(value, shift);
  // 2^64 is the first double past UINT64_MAX.
  if (!(bytes < 18446744073709551616.0)) return bad();
  return static_cast<uint64_t>(bytes);
}

}  // namespace berth
