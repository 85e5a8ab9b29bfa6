#include "parley/message.hpp"

#include <fmt/format.h>

#include "core/utf8.hpp"
#include "parley/version.hpp"

namespace parley {

int version_number() {
  return PARLEY_VERSION_NUMBER;
}
const char* version_string() {
  return PARLEY_VERSION_STRING;
}

Status validate_id(const std::string& id, const char* what, const Limits& limits) {
  if (id.empty()) return error(Code::kInvalidArgument, fmt::format("{} is empty", what));
  if (id.size() > limits.max_id_bytes) {
    return error(Code::kTooLarge,
                 fmt::format("{} is {} bytes; the limit is {}", what, id.size(), limits.max_id_bytes));
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) {
      return error(Code::kInvalidArgument, fmt::format("{} contains a control character", what));
    }
  }
  if (!detail::is_utf8(id)) return error(Code::kInvalidArgument, fmt::format("{} is not UTF-8", what));
  return Status::ok();
}

Status validate_submission(const std::string& group_id, const std::string& user_id,
                           const std::string& client_msg_id, const std::string& contents,
                           const Limits& limits) {
  if (Status s = validate_id(group_id, "group_id", limits); !s) return s;
  if (Status s = validate_id(user_id, "user_id", limits); !s) return s;
  if (!client_msg_id.empty()) {
    if (Status s = validate_id(client_msg_id, "client_msg_id", limits); !s) return s;
  }
  if (contents.size() > limits.max_contents_bytes) {
    return error(Code::kTooLarge, fmt::format("contents is {} bytes; the limit is {}", contents.size(),
                                              limits.max_contents_bytes));
  }
  if (!detail::is_utf8(contents)) return error(Code::kInvalidArgument, "contents is not UTF-8");
  return Status::ok();
}

}  // namespace parley
