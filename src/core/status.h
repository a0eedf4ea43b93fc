// Status and StatusOr<T>: the error currency at every module boundary.
//
// A Status is cheap to copy when OK (no allocation). Codes follow the gRPC
// canonical set so that each front end maps them one-to-one (see
// server/http/http_status.h and server/grpc/grpc_status.h).
#pragma once

#include <cassert>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace berth {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,    // the caller's input is wrong (HTTP 400)
    kNotFound,           // no such model / version / route (HTTP 404)
    kAlreadyExists,      // (HTTP 409)
    kFailedPrecondition, // a state the request cannot act on (HTTP 400)
    kResourceExhausted,  // over a limit, e.g. body size (HTTP 413 / 429)
    kUnavailable,        // not ready, shutting down (HTTP 503)
    kUnimplemented,      // (HTTP 501)
    kInternal,           // a broken invariant or engine fault (HTTP 500)
    kPermissionDenied,   // the caller may not do this (HTTP 403)
    kAborted,            // conflicts with the registry's state, e.g. a version in use (HTTP 409)
    kDeadlineExceeded,   // the request's deadline passed before it ran (HTTP 504)
    kUnauthenticated,    // no valid credentials (HTTP 401)
  };
  // How many codes there are, for tables indexed by code.
  static constexpr size_t kCodeCount = static_cast<size_t>(Code::kUnauthenticated) + 1;

  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status ResourceExhausted(std::string m) {
    return {Code::kResourceExhausted, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Unimplemented(std::string m) { return {Code::kUnimplemented, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  static Status PermissionDenied(std::string m) {
    return {Code::kPermissionDenied, std::move(m)};
  }
  static Status Aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
  static Status DeadlineExceeded(std::string m) {
    return {Code::kDeadlineExceeded, std::move(m)};
  }
  static Status Unauthenticated(std::string m) {
    return {Code::kUnauthenticated, std::move(m)};
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(const std::string& context) const {
    return ok() ? *this : Status(code_, context + ": " + message_);
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

const char* StatusCodeName(Status::Code code);

// Holds either a value or a non-OK Status.
template <typename T>
class StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT
  StatusOr(T value) : value_(std::move(value)) {}                                // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace berth

#define BERTH_CONCAT_INNER(a, b) a##b
#define BERTH_CONCAT(a, b) BERTH_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` yields a non-OK Status.
#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::berth::Status _berth_status = (expr);      \
    if (!_berth_status.ok()) return _berth_status; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, StatusOrExpr())`.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(BERTH_CONCAT(_berth_or_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
