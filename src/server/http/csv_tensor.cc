#include "server/http/csv_tensor.h"

#include <charconv>
#include <cstring>
#include <string>
#include <vector>

namespace berth::http {
namespace {

std::string_view Trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) - begin + 1);
}

// std::errc() on success, result_out_of_range for a number beyond a
// double, invalid_argument for anything else.
std::errc ParseNumber(std::string_view field, double* out) {
  // from_chars takes no '+' sign; a CSV writer may put one.
  if (field.starts_with('+')) {
    field.remove_prefix(1);
    if (field.starts_with('+') || field.starts_with('-')) return std::errc::invalid_argument;
  }
  // from_chars reads "nan(<chars>)" as a NaN: the parenthesised part is
  // junk to a CSV reader, so only the bare nan/inf/infinity words are taken.
  if (field.find('(') != std::string_view::npos) return std::errc::invalid_argument;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), *out);
  if (end != field.data() + field.size()) return std::errc::invalid_argument;
  return ec;
}

// The start of `field` for an error message, with bytes that are not
// printable ASCII (NUL, control characters) written as \xNN so they show.
std::string Quote(std::string_view field) {
  constexpr size_t kShown = 40;
  std::string out;
  for (unsigned char c : field.substr(0, kShown)) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (field.size() > kShown) out += "...";
  return out;
}

template <typename T>
StatusOr<Tensor> Parse(std::string_view body, const TensorSpec& spec) {
  const std::string where = "input '" + spec.name + "' (" +
                            std::string(DataTypeName(spec.datatype)) + " " +
                            ShapeToString(spec.shape) + ")";
  std::vector<T> values;
  int64_t rows = 0;
  int64_t width = -1;
  size_t blank_line = 0;  // the first blank line seen, 0 if none
  size_t line_number = 0;
  while (!body.empty()) {
    const size_t newline = body.find('\n');
    std::string_view line = body.substr(0, newline);
    body.remove_prefix(newline == std::string_view::npos ? body.size() : newline + 1);
    ++line_number;
    if (Trim(line).empty()) {
      if (blank_line == 0) blank_line = line_number;
      continue;
    }
    if (blank_line != 0) {
      return Status::InvalidArgument("CSV line " + std::to_string(blank_line) +
                                     " is blank, between rows");
    }
    int64_t fields = 0;
    while (true) {
      const size_t comma = line.find(',');
      const std::string_view field = Trim(line.substr(0, comma));
      ++fields;
      // Through double, as JSON numbers are read: FP32 gets the same value
      // from "0.1" in either body, and a number beyond FP32 becomes an
      // infinity that validation refuses.
      double value = 0;
      if (const std::errc ec = ParseNumber(field, &value); ec != std::errc()) {
        std::string message = "CSV line " + std::to_string(line_number) + ", field " +
                              std::to_string(fields) + " ('" + Quote(field) + "') ";
        if (ec == std::errc::result_out_of_range) {
          message += "is out of range";
        } else {
          message += "is not a number";
          if (line_number == 1) message += " (the body must not have a header line)";
        }
        return Status::InvalidArgument(message);
      }
      values.push_back(static_cast<T>(value));
      if (comma == std::string_view::npos) break;
      line.remove_prefix(comma + 1);
    }
    if (width < 0) {
      width = fields;
      if (spec.shape[1] >= 0 && width != spec.shape[1]) {
        return Status::InvalidArgument("CSV line " + std::to_string(line_number) + " has " +
                                       std::to_string(width) + " values, but " + where +
                                       " takes " + std::to_string(spec.shape[1]) + " per row");
      }
    } else if (fields != width) {
      return Status::InvalidArgument("CSV line " + std::to_string(line_number) + " has " +
                                     std::to_string(fields) + " values, but line 1 has " +
                                     std::to_string(width));
    }
    ++rows;
  }
  if (rows == 0) return Status::InvalidArgument("the CSV body has no rows");
  Tensor tensor(spec.name, spec.datatype, {rows, width});
  RETURN_IF_ERROR(tensor.Allocate());
  std::memcpy(tensor.bytes().data(), values.data(), values.size() * sizeof(T));
  return tensor;
}

}  // namespace

StatusOr<Tensor> ParseCsvTensor(std::string_view body, const TensorSpec& spec) {
  if (spec.shape.size() != 2 ||
      (spec.datatype != DataType::kFp32 && spec.datatype != DataType::kFp64)) {
    return Status::InvalidArgument(
        "text/csv needs a model whose input is FP32 or FP64 of shape [-1, n], but input '" +
        spec.name + "' is " + std::string(DataTypeName(spec.datatype)) + " " +
        ShapeToString(spec.shape) + "; send JSON instead");
  }
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);  // a UTF-8 byte order mark
  if (spec.datatype == DataType::kFp32) return Parse<float>(body, spec);
  return Parse<double>(body, spec);
}

}  // namespace berth::http
