// Helpers of the PostgreSQL registry store (postgres_registry_store.cc and
// its prediction table, postgres_predictions.cc): statement parameters and
// reading results. Internal to the registry.
#pragma once

#include <libpq-fe.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::pg {

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

// A statement's parameters. Text goes in binary format with its length, so
// bytes are never cut at a NUL (PostgreSQL refuses such text, clearly);
// integers go as decimal text; `Bytes` points at the caller's buffer (an
// artifact is not copied) and must outlive the call.
class Params {
 public:
  Params& Text(std::string_view v) { return Add(Own(std::string(v)), 1); }
  Params& Int(int64_t v) { return Add(Own(std::to_string(v)), 0); }
  Params& OptionalInt(std::optional<int64_t> v) { return v ? Int(*v) : Null(); }
  Params& NullableText(std::string_view v) { return v.empty() ? Null() : Text(v); }
  Params& Bytes(std::string_view v) { return Add(v, 1); }
  Params& OptionalDouble(std::optional<double> v) { return v ? Double(*v) : Null(); }
  // As decimal text, exact enough to read back the same double.
  Params& Double(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return Add(Own(buf), 0);
  }

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  std::string_view Own(std::string v) { return owned_.emplace_back(std::move(v)); }
  Params& Null() {
    values_.push_back(nullptr);
    lengths_.push_back(0);
    formats_.push_back(0);
    return *this;
  }
  Params& Add(std::string_view v, int format) {
    // libpq wants a non-null pointer for an empty value (null means NULL).
    values_.push_back(v.data() != nullptr ? v.data() : "");
    lengths_.push_back(static_cast<int>(v.size()));
    formats_.push_back(format);
    return *this;
  }
  std::deque<std::string> owned_;  // stable addresses as it grows
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// Row `row`, column `col` of a text-format result.
inline std::string Text(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<size_t>(PQgetlength(r, row, col)));
}
inline int64_t Int(const PGresult* r, int row, int col) {
  int64_t v = 0;
  const char* p = PQgetvalue(r, row, col);
  std::from_chars(p, p + PQgetlength(r, row, col), v);
  return v;
}
inline std::optional<int64_t> OptionalInt(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return std::nullopt;
  return Int(r, row, col);
}

inline std::optional<double> OptionalDouble(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return std::nullopt;
  return std::strtod(PQgetvalue(r, row, col), nullptr);
}

// libpq's multi-line messages on one line: "a\n\tb\n" becomes "a; b".
inline std::string OneLine(std::string_view message) {
  std::string out;
  bool line_start = false;
  for (char c : message) {
    if (c == '\n') {
      line_start = true;
    } else if (line_start && (c == ' ' || c == '\t')) {
      continue;
    } else {
      if (line_start && !out.empty()) out += "; ";
      line_start = false;
      out += c;
    }
  }
  return out;
}

// The password in a postgresql:// URL's user info, if any (percent-encoded
// as written), so that messages can be scrubbed of it.
inline std::string UrlPassword(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return "";
  std::string_view rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?"));
  const size_t at = rest.rfind('@');
  if (at == std::string_view::npos) return "";
  const std::string_view userinfo = rest.substr(0, at);
  const size_t colon = userinfo.find(':');
  return colon == std::string_view::npos ? "" : std::string(userinfo.substr(colon + 1));
}

// `message` with every occurrence of `password` replaced, should libpq ever
// quote the URL it was given.
inline std::string ScrubPassword(std::string message, const std::string& password) {
  if (password.empty()) return message;
  for (size_t at = message.find(password); at != std::string::npos;
       at = message.find(password, at)) {
    message.replace(at, password.size(), "***");
  }
  return message;
}

}  // namespace berth::pg
