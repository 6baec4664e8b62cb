// Status and Result<T>: how every fallible call in the host reports failure.
//
// A Status must be looked at: it is [[nodiscard]], and the only way to drop one on purpose is
// the searchable `ignoreError()`. `retryable()` says whether trying the same thing again later can
// succeed (a broker outage, a full disk), as opposed to a bad input that never will.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace firehub {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input: 400
  kNotFound,            // 404
  kAlreadyExists,       // 409
  kFailedPrecondition,  // the thing exists but is not in a state that allows this: 409
  kPermissionDenied,    // 403
  kUnauthenticated,     // 401
  kPayloadTooLarge,     // 413
  kUnsupportedMedia,    // 415
  kMethodNotAllowed,    // a known resource, another method: 405 (with Allow)
  kResourceExhausted,   // out of space or over a limit: 503, retryable
  kUnavailable,         // a dependency is down: 503, retryable
  kInternal,            // a bug or an unexpected failure: 500
  kDataLoss,            // stored data is corrupt: 500
};

const char* statusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status invalidArgument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status notFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status alreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status methodNotAllowed(std::string m) {
    return {StatusCode::kMethodNotAllowed, std::move(m)};
  }
  static Status permissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }
  static Status failedPrecondition(std::string m) {
    return {StatusCode::kFailedPrecondition, std::move(m)};
  }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status resourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status dataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }

  bool isOk() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return isOk(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // True when the same operation may succeed later without a change of input.
  bool retryable() const {
    return code_ == StatusCode::kUnavailable || code_ == StatusCode::kResourceExhausted;
  }
  std::string toString() const;
  // The one explicit way to drop a Status.
  void ignoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).isOk() && "a Result needs a value or an error");
  }

  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }
  const Status& status() const {
    static const Status kOk;
    return isOk() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace firehub

// Returns early from the enclosing function when `expr` yields a failed Status.
#define FIREHUB_RETURN_IF_ERROR(expr)          \
  do {                                         \
    ::firehub::Status fh_status_ = (expr);     \
    if (!fh_status_.isOk()) return fh_status_; \
  } while (0)
