#include "http_util.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>

namespace parley::server {

int http_status_for(Code code) {
  switch (code) {
    case Code::kOk: return 200;
    case Code::kInvalidArgument: return 400;
    case Code::kNotFound: return 404;
    case Code::kPermissionDenied: return 403;
    case Code::kAlreadyExists: return 409;
    case Code::kTooLarge: return 413;
    case Code::kUnavailable: return 503;
    case Code::kTimeout: return 504;
    case Code::kEpochMismatch: return 409;
    case Code::kBackpressure: return 429;
    case Code::kCorruption: return 500;
    case Code::kInternal: return 500;
    case Code::kUnauthenticated: return 401;
    case Code::kClosed: return 503;
    case Code::kTrimmed: return 410;
    case Code::kLimitExceeded: return 429;
    case Code::kDeleted: return 410;
  }
  return 500;
}

std::string error_event_json(const Status& st) {
  return Json()
      .str("t", "error")
      .num("rid", 0)
      .num("code", static_cast<int>(st.code()))
      .str("name", code_name(st.code()))
      .str("msg", st.message())
      .done();
}

std::string error_json(const Status& st) {
  return Json()
      .num("code", static_cast<int>(st.code()))
      .str("name", code_name(st.code()))
      .str("msg", st.message())
      .done();
}

std::string bearer_token(const std::string& header) {
  const std::string prefix = "Bearer ";
  return header.compare(0, prefix.size(), prefix) == 0 ? header.substr(prefix.size()) : std::string();
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

const char* role_name(Role r) {
  return r == Role::kOwner ? "owner" : "member";
}

Status json_string_field(const rapidjson::Document& doc, const char* key, std::string* out) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsString()) {
    return error(Code::kInvalidArgument, fmt::format("field '{}' (a string) is required", key));
  }
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return Status::ok();
}

Status json_body(const std::string& body, rapidjson::Document* doc) {
  doc->Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc->HasParseError() || !doc->IsObject()) {
    return error(Code::kInvalidArgument, "the body must be a JSON object");
  }
  return Status::ok();
}

Status group_found(MembershipStore& membership, const std::string& group) {
  Result<bool> exists = membership.group_exists(group);
  if (!exists) return exists.status();
  if (!*exists) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group));
  return Status::ok();
}

}  // namespace parley::server
