// The log's rules for entries that name another (MessageStore::append says
// them), once for every store: each store looks up what the request names
// and asks check_entry. Internal: not installed.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "parley/store.hpp"

namespace parley::detail {

// What a store holds at the id a request names (its target, or the message
// a new message replies to).
struct NamedEntry {
  bool found = false;  // an entry with that id is stored (and not trimmed)
  EntryKind kind = EntryKind::kMessage;
  std::string user_id;
  bool deleted = false;
};

// The id a request names: its target, or for a message what it replies to (0: none).
inline uint64_t named_id(const AppendRequest& r) {
  return r.entry.kind == EntryKind::kMessage ? r.entry.reply_to : r.entry.target;
}

// Whether the log lets `r` in. `named`: what is stored at named_id(r);
// `reacted`: for a reaction, whether (target, user, key) is already there;
// `epoch`: the log's epoch (0 before its first append counts as 1).
inline Status check_entry(const AppendRequest& r, const NamedEntry& named, bool reacted, uint64_t epoch) {
  const uint64_t id = named_id(r);
  if (id == 0) return Status::ok();
  epoch = std::max<uint64_t>(epoch, 1);
  if (r.epoch != 0 && r.epoch != epoch) {
    return error(Code::kEpochMismatch, fmt::format("'{}' was reset: message {} of epoch {} is gone (it is in epoch {})",
                                                   r.group_id, id, r.epoch, epoch));
  }
  if (!named.found || named.kind != EntryKind::kMessage) {
    return error(Code::kNotFound, fmt::format("'{}' has no message {}", r.group_id, id));
  }
  if (r.entry.kind == EntryKind::kMessage) return Status::ok();  // a reply to a deleted message is fine
  if (named.deleted) return error(Code::kDeleted, fmt::format("message {} of '{}' was deleted", id, r.group_id));
  if ((r.entry.kind == EntryKind::kEdit || r.entry.kind == EntryKind::kDelete) && named.user_id != r.user_id) {
    return error(Code::kPermissionDenied,
                 fmt::format("only its author may {} message {}", entry_kind_name(r.entry.kind), id));
  }
  if (r.entry.kind == EntryKind::kReaction) {
    if (!r.entry.remove && reacted) {
      return error(Code::kAlreadyExists, fmt::format("'{}' already reacted '{}' to message {}", r.user_id,
                                                     r.contents, id));
    }
    if (r.entry.remove && !reacted) {
      return error(Code::kNotFound,
                   fmt::format("'{}' has no reaction '{}' on message {}", r.user_id, r.contents, id));
    }
  }
  return Status::ok();
}

// Mentions as one stored string: ids joined by '\n' (ids have no control
// characters). SQLite's messages.mentions, Redis's stream field mn.
inline std::string join_ids(const std::vector<std::string>& ids) {
  std::string out;
  for (const std::string& id : ids) {
    if (!out.empty()) out += '\n';
    out += id;
  }
  return out;
}
inline std::vector<std::string> split_ids(const std::string& joined) {
  std::vector<std::string> out;
  size_t from = 0;
  while (from < joined.size()) {
    size_t to = joined.find('\n', from);
    if (to == std::string::npos) to = joined.size();
    out.push_back(joined.substr(from, to - from));
    from = to + 1;
  }
  return out;
}

// The users a message's mention counts go to (decision 49): its mentions,
// once each, without its author (nobody is unread-mentioned by themselves).
// Empty for every other kind.
inline std::vector<std::string> mentioned_others(const Message& m) {
  std::vector<std::string> out;
  if (m.entry.kind != EntryKind::kMessage) return out;
  for (const std::string& u : m.entry.mentions) {
    if (u != m.user_id) out.push_back(u);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Where an unread count starts: the position's id if it is of the log's
// epoch, else 0; at most the head, at least the retention edge.
inline UnreadCount unread_frame(const UnreadQuery& q, uint64_t epoch, uint64_t head, uint64_t trimmed) {
  UnreadCount c;
  c.group_id = q.group_id;
  c.epoch = epoch;
  c.head = head;
  c.after = std::min(q.read.epoch == epoch ? q.read.msg_id : 0, head);
  if (c.after < trimmed) {
    c.after = trimmed;
    c.trimmed = true;
  }
  return c;
}

// Whether a folded page lists an entry of this kind: messages, membership
// entries and system notices do; edits, deletes and reactions fold into the
// message they name.
inline bool listed_when_folded(EntryKind kind) { return kind == EntryKind::kMessage || written_by_host(kind); }

// A message's reaction counts from the reactions in force on it, as (key,
// user) pairs in any order; `reader`'s own are marked.
inline std::vector<ReactionCount> count_reactions(std::vector<std::pair<std::string, std::string>> rows,
                                                  const std::string& reader) {
  std::sort(rows.begin(), rows.end());
  std::vector<ReactionCount> out;
  for (const auto& [key, user] : rows) {
    if (out.empty() || out.back().key != key) out.push_back({key, 0, false});
    ++out.back().count;
    if (user == reader) out.back().mine = true;
  }
  return out;
}

// The Message an accepted request becomes.
inline Message entry_of(const AppendRequest& r, uint64_t msg_id, uint64_t epoch) {
  Message m;
  m.group_id = r.group_id;
  m.msg_id = msg_id;
  m.prev_msg_id = msg_id - 1;
  m.timestamp_ms = r.timestamp_ms;
  m.user_id = r.user_id;
  m.contents = r.contents;
  m.client_msg_id = r.client_msg_id;
  m.epoch = epoch;
  m.entry = r.entry;
  return m;
}

// The group's rules for a user who is not yet a member joining it
// (MembershipStore::join): a private group lets in the invited and the
// admitted, and no group more than its member limit (0: none).
inline Status join_refusal(const std::string& group_id, const GroupSettings& settings, Admission how, bool invited,
                           uint64_t members) {
  if (settings.kind == GroupKind::kPrivate && how == Admission::kAsked && !invited) {
    return error(Code::kPermissionDenied, fmt::format("'{}' is private: joining needs an invite", group_id));
  }
  if (settings.member_limit != 0 && members >= settings.member_limit) {
    return error(Code::kLimitExceeded,
                 fmt::format("'{}' has {} members; its limit is {}", group_id, members, settings.member_limit));
  }
  return Status::ok();
}

// The first string past every string that starts with `prefix` ("" when
// there is none: the prefix is empty or all 0xff bytes), for discovery's
// range reads.
inline std::string past_prefix(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (!prefix.empty()) prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

}  // namespace parley::detail
