#include "parley/message.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>

#include "core/utf8.hpp"
#include "parley/store.hpp"
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

Status validate_group_settings(const GroupSettings& settings) {
  if (settings.kind != GroupKind::kPublic && settings.kind != GroupKind::kPrivate) {
    return error(Code::kInvalidArgument, "kind must be public or private");
  }
  Limits text;
  text.max_id_bytes = kMaxGroupTitleBytes;
  if (!settings.title.empty()) {
    if (Status s = validate_id(settings.title, "title", text); !s) return s;
  }
  text.max_id_bytes = kMaxGroupTopicBytes;
  if (!settings.topic.empty()) {
    if (Status s = validate_id(settings.topic, "topic", text); !s) return s;
  }
  if (settings.member_limit > kMaxMemberLimit) {
    return error(Code::kInvalidArgument,
                 fmt::format("member_limit must be from 0 (none) to {}", kMaxMemberLimit));
  }
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

const char* entry_kind_name(EntryKind kind) {
  switch (kind) {
    case EntryKind::kMessage: return "message";
    case EntryKind::kEdit: return "edit";
    case EntryKind::kDelete: return "delete";
    case EntryKind::kReaction: return "reaction";
    case EntryKind::kJoin: return "join";
    case EntryKind::kLeave: return "leave";
    case EntryKind::kRemoved: return "removed";
    case EntryKind::kSystem: return "system";
  }
  return "message";
}

void erase_contents(Message* m) {
  m->contents.clear();
  m->contents.shrink_to_fit();
  m->entry.mentions.clear();
  m->entry.meta.clear();
  m->deleted = true;
}

namespace {
Status validate_meta(const std::string& meta, const Limits& limits) {
  if (meta.size() > limits.max_meta_bytes) {
    return error(Code::kTooLarge,
                 fmt::format("meta is {} bytes; the limit is {}", meta.size(), limits.max_meta_bytes));
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag>(meta.data(), meta.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return error(Code::kInvalidArgument, "meta must be a JSON object");
  }
  return Status::ok();
}
}  // namespace

Status validate_entry(const EntryFields& entry, const std::string& contents, const Limits& limits) {
  const auto& [kind, target, reply_to, mentions, meta, remove] = entry;
  const char* name = entry_kind_name(kind);
  if (kind == EntryKind::kMessage) {
    if (target != 0) return error(Code::kInvalidArgument, "a message has no target; edit, delete and react do");
    if (remove) return error(Code::kInvalidArgument, "remove is for reactions");
    if (mentions.size() > limits.max_mentions) {
      return error(Code::kTooLarge,
                   fmt::format("{} mentions; the limit is {}", mentions.size(), limits.max_mentions));
    }
    for (size_t i = 0; i < mentions.size(); ++i) {
      if (Status s = validate_id(mentions[i], "a mention", limits); !s) return s;
      if (std::find(mentions.begin(), mentions.begin() + static_cast<std::ptrdiff_t>(i), mentions[i]) !=
          mentions.begin() + static_cast<std::ptrdiff_t>(i)) {
        return error(Code::kInvalidArgument, fmt::format("'{}' is mentioned twice", mentions[i]));
      }
    }
    if (!meta.empty()) return validate_meta(meta, limits);
    return Status::ok();
  }
  if (kind == EntryKind::kSystem) {
    if (target != 0 || reply_to != 0 || !mentions.empty() || remove) {
      return error(Code::kInvalidArgument, "system takes no target, reply_to, mentions or remove");
    }
    if (contents.empty()) return error(Code::kInvalidArgument, "a system notice needs its text");
    if (!meta.empty()) return validate_meta(meta, limits);
    return Status::ok();
  }
  if (is_membership(kind)) {
    if (target != 0 || reply_to != 0 || !mentions.empty() || !meta.empty() || remove) {
      return error(Code::kInvalidArgument, fmt::format("{} takes no target, reply_to, mentions, meta or remove", name));
    }
    if (kind == EntryKind::kRemoved) return validate_id(contents, "removed member", limits);
    if (!contents.empty()) return error(Code::kInvalidArgument, fmt::format("{} takes no contents", name));
    return Status::ok();
  }
  if (target == 0) return error(Code::kInvalidArgument, fmt::format("{} needs the id of its message", name));
  if (reply_to != 0 || !mentions.empty() || !meta.empty()) {
    return error(Code::kInvalidArgument, fmt::format("{} takes no reply_to, mentions or meta", name));
  }
  if (remove && kind != EntryKind::kReaction) return error(Code::kInvalidArgument, "remove is for reactions");
  if (kind == EntryKind::kDelete && !contents.empty()) {
    return error(Code::kInvalidArgument, "delete takes no contents");
  }
  if (kind == EntryKind::kReaction) {
    Limits key_limits = limits;
    key_limits.max_id_bytes = limits.max_reaction_bytes;
    return validate_id(contents, "reaction key", key_limits);
  }
  return Status::ok();
}

}  // namespace parley
