// Status and Result: how every Parley call reports failure.
//
// No exception crosses a public Parley API. A call that can fail returns a
// Status (or a Result<T> holding either a value or a Status). Codes are stable
// integers: the C API exposes the same numbers and they are never renumbered.
// Thread rules: plain values, safe to copy between threads.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace parley {

// Stable error codes. Append only; never renumber (the C API mirrors them).
enum class Code : int {
  kOk = 0,
  kInvalidArgument = 1,   // malformed or out-of-limits input
  kNotFound = 2,          // unknown group, session or item
  kPermissionDenied = 3,  // not a member / not allowed
  kAlreadyExists = 4,     // create of something that exists
  kTooLarge = 5,          // payload or id over its limit
  kUnavailable = 6,       // store or peer unreachable; retry later
  kTimeout = 7,           // a bounded wait ran out
  kEpochMismatch = 8,     // the group's history was reset; resync
  kBackpressure = 9,      // a bounded queue is full (slow consumer)
  kCorruption = 10,       // stored data failed a check
  kInternal = 11,         // a bug; the message says where
  kUnauthenticated = 12,  // missing, bad or expired credentials
  kClosed = 13,           // the object was closed
  kTrimmed = 14,          // the history asked for was removed by retention
  kLimitExceeded = 15,    // a per-user limit (send rate, connections, groups); retry later
  kDeleted = 16,          // the message named was deleted (edit, react to it: refused)
};

// Short stable name of a code, e.g. "not_found". Never null.
const char* code_name(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "not_found: group 'g1' does not exist"
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status error(Code code, std::string message) {
  return Status(code, std::move(message));
}

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: must not be ok()

  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  // REQUIRES: is_ok()
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  // The error; Status::ok() when a value is held.
  Status status() const { return is_ok() ? Status() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace parley
