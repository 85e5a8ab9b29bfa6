// Message: one entry of a group's ordered history, and the limits every input
// is checked against.
//
// msg_id is dense per group and starts at 1; it is assigned by the
// MessageStore at append (never by a node), so prev_msg_id == msg_id - 1 for
// every stored message. (group_id, epoch, msg_id) names one message for good:
// after a group's history is reset, ids start again in a new epoch. Plain
// value type; no thread rules.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parley/status.hpp"

namespace parley {

// What a log entry is. Every change to a group is an entry with its own dense
// id, so ordering, gap detection, resume, pull and epochs cover it. Stable
// numbers (stored, and the C API mirrors them).
enum class EntryKind : int {
  kMessage = 0,   // a message: contents, optional reply_to, mentions, meta
  kEdit = 1,      // new contents for message `target`, by its author
  kDelete = 2,    // erases message `target` (and its edits), by its author
  kReaction = 3,  // adds (or with `remove`, takes back) reaction `contents` on message `target`
  // Membership changes, written by the host (Node::record_membership), never
  // sent by clients: user_id joined / left; user_id removed member `contents`.
  kJoin = 4,
  kLeave = 5,
  kRemoved = 6,
  // A notice from the app itself (Node::record_system), never sent by
  // clients: contents its text, optional meta; user_id names the app's voice.
  kSystem = 7,
};

// "message", "edit", "delete", "reaction", "join", "leave", "removed", "system". Never null.
const char* entry_kind_name(EntryKind kind);
// Whether the kind records a membership change (join, leave, removed).
inline bool is_membership(EntryKind kind) { return kind >= EntryKind::kJoin && kind <= EntryKind::kRemoved; }
// Whether only the host writes entries of the kind (membership changes and
// system notices): clients cannot send them.
inline bool written_by_host(EntryKind kind) { return is_membership(kind) || kind == EntryKind::kSystem; }

// What a log entry carries beyond a plain message's fields: its kind and the
// fields of that kind (validate_entry says which kind takes which).
struct EntryFields {
  EntryKind kind = EntryKind::kMessage;
  uint64_t target = 0;                // edit, delete, reaction: the message it changes
  uint64_t reply_to = 0;              // message: the message it answers (0: none)
  std::vector<std::string> mentions;  // message: user ids it mentions
  std::string meta;                   // message: a JSON object the app defines ("" = none)
  bool remove = false;                // reaction: takes the user's reaction back
  // A plain message: every field at its default.
  bool plain() const {
    return kind == EntryKind::kMessage && target == 0 && reply_to == 0 && mentions.empty() && meta.empty() &&
           !remove;
  }
};

struct Message {
  std::string group_id;
  uint64_t msg_id = 0;        // 1, 2, 3 ... per group
  uint64_t prev_msg_id = 0;   // msg_id - 1; carried so receivers can detect gaps
  int64_t timestamp_ms = 0;   // server clock at append
  std::string user_id;        // the sender
  std::string contents;       // UTF-8 text (checked by validate_submission)
  std::string client_msg_id;  // sender's idempotency key; may be empty (no dedup)
  uint64_t epoch = 0;         // the group log's epoch (>= 1 once stored); 0: unknown
  EntryFields entry{};
  bool deleted = false;  // message or edit erased by a later delete (a tombstone)
};

// One reaction key on a message and how many users put it there.
struct ReactionCount {
  std::string key;
  uint64_t count = 0;
  bool mine = false;  // the reader is one of them
  bool operator==(const ReactionCount& o) const { return key == o.key && count == o.count && mine == o.mine; }
};

// What a message shows beyond its own fields once every later entry up to
// the head is applied (a "folded" history answer: MessageStore::read_folded).
// The message itself then carries its latest contents.
struct Fold {
  uint64_t edited = 0;                   // the latest edit's id (0: never edited)
  std::vector<ReactionCount> reactions;  // sorted by key; none on a deleted message
  uint64_t replies = 0;                  // messages answering it (reply_to) that are not deleted
  bool operator==(const Fold& o) const {
    return edited == o.edited && reactions == o.reactions && replies == o.replies;
  }
};

// Turns an entry into its tombstone: contents, mentions and meta erased.
void erase_contents(Message* m);

using MessagePtr = std::shared_ptr<const Message>;

// Size limits. Defaults suit chat; hosts may tighten or widen them.
struct Limits {
  size_t max_id_bytes = 128;  // group_id, user_id, client_msg_id, node ids
  size_t max_contents_bytes = 64 * 1024;
  size_t max_batch_messages = 4096;  // messages in one peer batch
  size_t max_read_limit = 1000;      // messages in one read/pull answer
  size_t max_mentions = 50;          // user ids in one message's mentions
  size_t max_meta_bytes = 4096;      // a message's meta (JSON text)
  size_t max_reaction_bytes = 64;    // a reaction key
  size_t max_unread_groups = 1000;   // groups named in one unread request
};

// Checks an identifier: non-empty, at most limits.max_id_bytes (else
// kTooLarge), UTF-8 without control characters (else kInvalidArgument).
// `what` names it in the error.
Status validate_id(const std::string& id, const char* what, const Limits& limits);

// Checks what a client or a peer node may submit: group and user ids,
// client_msg_id (may be empty) as validate_id, contents UTF-8 and at most
// limits.max_contents_bytes. Returns kInvalidArgument or kTooLarge with a
// message naming the field.
Status validate_submission(const std::string& group_id, const std::string& user_id,
                           const std::string& client_msg_id, const std::string& contents,
                           const Limits& limits);

// Checks the parts of an entry beyond validate_submission's: which fields
// its kind takes (an edit, delete or reaction names a target and carries no
// reply_to, mentions or meta; a delete no contents; a reaction a key as
// contents, like an id but at most max_reaction_bytes; a join or leave
// nothing, a removal the removed member's id as contents), mentions as ids (at
// most max_mentions, no repeats), meta a JSON object of at most
// max_meta_bytes; a system notice contents and optional meta only.
// kInvalidArgument or kTooLarge naming the field.
Status validate_entry(const EntryFields& entry, const std::string& contents, const Limits& limits);

}  // namespace parley
