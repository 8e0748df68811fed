// Status and Result<T>: how errors cross layer boundaries in skiff.
//
// A Status carries a code that maps one-to-one onto a Kubernetes Status reason and HTTP code
// (see reason() and http_code()), a human-readable message, and for validation errors the
// per-field causes. NotFound is an expected outcome, not a failure. No exception crosses a
// layer: functions that can fail return Status or Result<T>.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace skiff {

enum class StatusCode {
  kOk = 0,
  kBadRequest,            // 400 BadRequest
  kUnauthorized,          // 401 Unauthorized
  kForbidden,             // 403 Forbidden
  kNotFound,              // 404 NotFound
  kMethodNotAllowed,      // 405 MethodNotAllowed
  kNotAcceptable,         // 406 NotAcceptable
  kAlreadyExists,         // 409 AlreadyExists
  kConflict,              // 409 Conflict
  kGone,                  // 410 Expired (resourceVersion too old)
  kTooLarge,              // 413 RequestEntityTooLarge
  kUnsupportedMediaType,  // 415 UnsupportedMediaType
  kInvalid,               // 422 Invalid
  kTooManyRequests,       // 429 TooManyRequests
  kInternal,              // 500 InternalError
  kUnavailable,           // 503 ServiceUnavailable
  kTimeout,               // 504 Timeout
};

// Kubernetes StatusReason for a code ("NotFound", "Invalid", ...); "" for kOk.
const char* reason(StatusCode code);
// The HTTP status code Kubernetes answers with for a code; 200 for kOk.
int http_code(StatusCode code);

// One field-level cause of an Invalid (or BadRequest) status, as in metav1.StatusCause.
struct StatusCause {
  std::string reason;   // e.g. "FieldValueInvalid", "FieldValueRequired", "FieldValueNotSupported"
  std::string message;  // e.g. "Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must ..."
  std::string field;    // e.g. "metadata.name"
};

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status BadRequest(std::string m) { return {StatusCode::kBadRequest, std::move(m)}; }
  static Status Unauthorized(std::string m) { return {StatusCode::kUnauthorized, std::move(m)}; }
  static Status Forbidden(std::string m) { return {StatusCode::kForbidden, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status Gone(std::string m) { return {StatusCode::kGone, std::move(m)}; }
  static Status TooLarge(std::string m) { return {StatusCode::kTooLarge, std::move(m)}; }
  static Status Invalid(std::string m) { return {StatusCode::kInvalid, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  bool is_not_found() const { return code_ == StatusCode::kNotFound; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<StatusCause>& causes() const { return causes_; }
  Status& add_cause(StatusCause cause) {
    causes_.push_back(std::move(cause));
    return *this;
  }

  // "NotFound: <message>", for logs and test failure output.
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::vector<StatusCause> causes_;
};

// Either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    // REQUIRES: !status.ok(); an OK Result must carry a value.
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return std::get<T>(v_); }
  const T& operator*() const& { return std::get<T>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace skiff
