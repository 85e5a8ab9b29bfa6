#include "parley/status.hpp"

namespace parley {

const char* code_name(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid_argument";
    case Code::kNotFound: return "not_found";
    case Code::kPermissionDenied: return "permission_denied";
    case Code::kAlreadyExists: return "already_exists";
    case Code::kTooLarge: return "too_large";
    case Code::kUnavailable: return "unavailable";
    case Code::kTimeout: return "timeout";
    case Code::kEpochMismatch: return "epoch_mismatch";
    case Code::kBackpressure: return "backpressure";
    case Code::kCorruption: return "corruption";
    case Code::kInternal: return "internal";
    case Code::kUnauthenticated: return "unauthenticated";
    case Code::kClosed: return "closed";
    case Code::kTrimmed: return "history_trimmed";
    case Code::kLimitExceeded: return "limit_exceeded";
    case Code::kDeleted: return "deleted";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string s = code_name(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

}  // namespace parley
