// Storage interfaces: the message log, group membership and the session
// directory (user -> nodes).
//
// All calls are synchronous and batch-friendly so a node can group-commit
// everything that arrived in one turn of its loop. Implementations: memory
// (memory_store.hpp, tests and simulations), SQLite (sqlite_store.hpp, the
// embedded default) and Redis (redis_store.hpp, scale-out across machines).
// Several nodes may share one store: sequencing and dedup are the store's job
// and are atomic.
//
// Thread rules: an instance is used from one thread at a time unless the
// implementation says otherwise. Failures come back as Status values; a
// failed call changes nothing (append is all-or-nothing for the whole batch;
// on Redis, where groups live on different shards, for each group's part of
// it: see redis_store.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "parley/message.hpp"
#include "parley/protocol.hpp"
#include "parley/status.hpp"

namespace parley {

// One message a client wants appended. The store assigns msg_id/prev_msg_id.
// `entry` as in Message (checked by validate_entry before it reaches a store).
struct AppendRequest {
  std::string group_id;
  std::string user_id;
  std::string client_msg_id;  // empty: no dedup
  std::string contents;
  int64_t timestamp_ms = 0;
  EntryFields entry{};
  uint64_t epoch = 0;  // of the ids the entry names (SendReq::epoch); 0: the current one
};

// What append did with one request, in request order.
struct AppendOutcome {
  Message message;         // as stored (for a duplicate: the original message)
  bool duplicate = false;  // (user_id, client_msg_id) was already stored
  // Not ok: the log's rules refused the request (see MessageStore::append)
  // and nothing of it was stored; `message` is then empty.
  Status status{};
};

// The newest msg_id of a group and the epoch of its log. head == 0: empty.
struct GroupHead {
  std::string group_id;
  uint64_t head = 0;
  uint64_t epoch = 0;    // 0: group unknown to the store
  uint64_t trimmed = 0;  // ids <= trimmed were removed by retention (0: none)
};

// How far a member has read a group: every entry up to msg_id of epoch
// (docs/decisions.md 49). Later = a newer epoch, or the same epoch and a
// higher id; a position of an older epoch than the log's counts as nothing
// read.
struct ReadPosition {
  uint64_t epoch = 0;
  uint64_t msg_id = 0;
  bool later_than(const ReadPosition& o) const {
    return epoch > o.epoch || (epoch == o.epoch && msg_id > o.msg_id);
  }
};

// A member's unread count in a group, from the member's read position.
struct UnreadQuery {
  std::string group_id;
  std::string user_id;
  ReadPosition read;
};

// What MessageStore::unread counts (docs/decisions.md 49): the entries in
// (after, head] of kind message, not by the user, not deleted; `mentions`,
// those of them that mention the user.
struct UnreadCount {
  std::string group_id;
  uint64_t epoch = 0;     // the log's (0: no such group)
  uint64_t head = 0;      // counted up to here
  uint64_t after = 0;     // counted from here: the read position's id in this epoch
                          // (0 for another epoch), at most head, at least trimmed
  uint64_t unread = 0;
  uint64_t mentions = 0;
  bool trimmed = false;   // the position is below the retention edge: `after` is the edge
};

// A page of a group's folded history (MessageStore::read_folded).
struct FoldedPage {
  uint64_t epoch = 0;  // the log's (0: no such group)
  uint64_t head = 0;   // folded as of this id: what follows arrives as entries
  uint64_t to = 0;     // the page covers ids (after, to]; read on from `to` while to < head
  // The range's messages (latest contents; a deleted one as its tombstone)
  // and membership entries, ascending; edits, deletes and reactions are
  // folded into the messages they name, not listed.
  std::vector<Message> messages;
  std::vector<Fold> folds;  // one per message (a membership entry's is empty)
};

class MessageStore {
 public:
  MessageStore() = default;
  MessageStore(const MessageStore&) = delete;
  MessageStore& operator=(const MessageStore&) = delete;
  virtual ~MessageStore() = default;

  // Appends every request atomically: either all are stored (or recognised as
  // duplicates) or none is. Each group's ids continue densely from its head;
  // requests of one group in one batch get consecutive ids in request order.
  // A request whose (user_id, client_msg_id) is already stored - in this
  // batch or before - is not stored again; its outcome is the original
  // message with duplicate = true. On success *out holds one outcome per
  // request. A group appended to for the first time gets epoch 1.
  //
  // The log's rules, checked in order against the log as the batch leaves
  // it so far (a refused request gets its error as its outcome's status and
  // the rest of the batch goes on):
  // - an edit, delete or reaction names a message (kind message) of its
  //   group: else kNotFound; one that was deleted: kDeleted;
  // - an edit or delete is by the message's author: else kPermissionDenied;
  // - a reaction is one per (message, user, key): adding it again is
  //   kAlreadyExists, removing one that is not there kNotFound;
  // - a reply_to names an entry of kind message at or below the head: else
  //   kNotFound (a deleted one is fine);
  // - a delete erases the contents, mentions and meta of its message and of
  //   every edit of it (erase_contents) in the store itself: a later read
  //   returns tombstones, and the old bytes do not stay in the store's files
  //   (stores say how).
  virtual Status append(const std::vector<AppendRequest>& requests, std::vector<AppendOutcome>* out) = 0;

  // Messages of `group` with msg_id > after, ascending, at most `limit`.
  // Appends to *out (does not clear it). Unknown group: ok, nothing added.
  // A store with retention answers kTrimmed ("history of group 'g' is
  // trimmed before id N") when after + 1 was removed, never a silent hole;
  // heads() tells how far it was trimmed.
  // Every message the store returns (here and from append) carries the
  // group's current epoch.
  virtual Status read(const std::string& group_id, uint64_t after, size_t limit,
                      std::vector<Message>* out) = 0;

  // The entries of `group` with ids in (after, after + limit], folded as of
  // the head, atomically (one transaction or script: the page and its head
  // agree): each message with the contents of its latest edit and that
  // edit's id, its reaction counts (marking those `reader` gave) and its
  // reply count; edits, deletes and reactions themselves are left out.
  // Retention as read: kTrimmed when after + 1 was removed. Unknown group:
  // ok, an empty page of epoch 0. Every lookup is an index seek per message
  // of the page, never a scan of the log.
  virtual Status read_folded(const std::string& group_id, uint64_t after, size_t limit, const std::string& reader,
                             FoldedPage* out) = 0;

  // Head and epoch of each group, in the order asked. Unknown groups get
  // head 0, epoch 0.
  virtual Status heads(const std::vector<std::string>& group_ids, std::vector<GroupHead>* out) = 0;

  // Forgets a group's history and starts a new epoch (as after restoring a
  // backup or losing data): head becomes 0, epoch increases. Returns the new
  // epoch. Used by operations tools and tests.
  virtual Result<uint64_t> reset_group(const std::string& group_id) = 0;

  // For each query in order, the user's unread and mention counts from its
  // read position to the head (the caller reads the position from the
  // MembershipStore). A position of another epoch counts from 0; one past
  // the head counts nothing. Every count is a few index seeks, never a scan
  // of the log (docs/decisions.md 49). Unknown group: all 0.
  virtual Status unread(const std::vector<UnreadQuery>& queries, std::vector<UnreadCount>* out) = 0;
};

enum class Role : int { kMember = 1, kOwner = 2 };

struct Member {
  std::string user_id;
  Role role = Role::kMember;
};

// Who may join a group (docs/decisions.md 56). A public group: any user, by
// joining. A private group: a user the group invited, or one its owner or
// the app adds. A group made before kinds existed is public.
enum class GroupKind : int { kPublic = 0, kPrivate = 1 };

// What a group says of itself, beside its members. `member_limit` 0: none.
struct GroupSettings {
  GroupKind kind = GroupKind::kPublic;
  std::string title;
  std::string topic;
  uint32_t member_limit = 0;
  bool operator==(const GroupSettings& o) const {
    return kind == o.kind && title == o.title && topic == o.topic && member_limit == o.member_limit;
  }
};

// The bounds every host keeps (parley-server's routes, the C API):
// title at most 200 bytes, topic at most 1000, each empty or UTF-8 without
// control characters; member_limit at most 1000000.
constexpr size_t kMaxGroupTitleBytes = 200;
constexpr size_t kMaxGroupTopicBytes = 1000;
constexpr uint32_t kMaxMemberLimit = 1000000;
// kInvalidArgument or kTooLarge naming the field.
Status validate_group_settings(const GroupSettings& settings);

// A public group as discovery lists it.
struct GroupListing {
  std::string group_id;
  GroupSettings settings;
  uint64_t members = 0;
};

// How a user came to join (MembershipStore::join).
enum class Admission : int {
  kAsked = 0,     // the user asked: a private group needs its invite
  kAdmitted = 1,  // the owner or the app let the user in
};

class MembershipStore {
 public:
  MembershipStore() = default;
  MembershipStore(const MembershipStore&) = delete;
  MembershipStore& operator=(const MembershipStore&) = delete;
  virtual ~MembershipStore() = default;

  // Creates a group with `owner` as its owner. kAlreadyExists if it exists.
  virtual Status create_group(const std::string& group_id, const std::string& owner) = 0;
  virtual Result<bool> group_exists(const std::string& group_id) = 0;
  // Adds or changes a member. kNotFound if the group does not exist.
  virtual Status add(const std::string& group_id, const std::string& user_id, Role role) = 0;
  // Removes a member; kNotFound if not a member.
  virtual Status remove(const std::string& group_id, const std::string& user_id) = 0;
  // Members sorted by user_id. kNotFound if the group does not exist.
  virtual Result<std::vector<Member>> members(const std::string& group_id) = 0;
  // Groups of a user, sorted.
  virtual Result<std::vector<std::string>> groups_of(const std::string& user_id) = 0;
  // The user's role, or nullopt if not a member (or no such group).
  virtual Result<std::optional<Role>> role_of(const std::string& group_id, const std::string& user_id) = 0;
  // Moves a member's read position to `to` if that is later (never back:
  // two devices racing keep the furthest), atomically. Returns the position
  // in force afterwards. kNotFound if not a member. Leaving the group forgets
  // it.
  virtual Result<ReadPosition> mark_read(const std::string& group_id, const std::string& user_id,
                                         ReadPosition to) = 0;
  // A member's read position ({0, 0} if it never read). kNotFound if not a member.
  virtual Result<ReadPosition> read_position(const std::string& group_id, const std::string& user_id) = 0;
  // Sets a member's notification level in the group. kNotFound if not a
  // member. Changing the role keeps it; leaving the group forgets it (kAll
  // again on rejoining).
  virtual Status set_notify_level(const std::string& group_id, const std::string& user_id, NotifyLevel level) = 0;
  // Each user's level in the group, in the order asked: kAll for a member
  // that never set one, kNone for a non-member (nothing to notify).
  virtual Status notify_levels(const std::string& group_id, const std::vector<std::string>& user_ids,
                               std::vector<NotifyLevel>* out) = 0;

  // --- Group kinds and settings (decision 56) ---
  // Creates a group, as create_group, with `settings` in force.
  virtual Status create_group_with(const std::string& group_id, const std::string& owner,
                                   const GroupSettings& settings) = 0;
  // The group's settings. kNotFound if there is no such group.
  virtual Result<GroupSettings> settings(const std::string& group_id) = 0;
  // Replaces the group's settings. kNotFound if there is no such group. A
  // member limit below the members there are keeps them all and refuses
  // joins until they are fewer.
  virtual Status set_settings(const std::string& group_id, const GroupSettings& settings) = 0;
  // Lets `user_id` join the group with Admission::kAsked even if it is
  // private, until it joins (or leaves: a member's invite is spent).
  // kNotFound if there is no such group; a member: nothing to do.
  virtual Status invite(const std::string& group_id, const std::string& user_id) = 0;
  // Makes `user_id` a member, atomically against the group's rules: returns
  // the role it already had (nothing changed) or nullopt (joined now, as
  // kMember, its invite spent). kNotFound: no such group;
  // kPermissionDenied: a private group, kAsked and not invited;
  // kLimitExceeded: the group has member_limit members.
  virtual Result<std::optional<Role>> join(const std::string& group_id, const std::string& user_id,
                                           Admission how) = 0;
  // Public groups whose id starts with `prefix` and sorts after `after`
  // (byte order), the first `limit` of them, with their member counts.
  virtual Status public_groups(const std::string& prefix, const std::string& after, size_t limit,
                               std::vector<GroupListing>* out) = 0;
};

// user -> nodes hosting at least one live session of that user. Entries
// expire, so a node that died without cleaning up drops out on its own.
class SessionDirectory {
 public:
  SessionDirectory() = default;
  SessionDirectory(const SessionDirectory&) = delete;
  SessionDirectory& operator=(const SessionDirectory&) = delete;
  virtual ~SessionDirectory() = default;

  // Records that `node_id` hosts a session of `user_id` until expires_at_ms
  // (inserts or extends).
  virtual Status put(const std::string& user_id, const std::string& node_id, int64_t expires_at_ms) = 0;
  // Removes one entry (missing is fine). Named erase, not remove, so one class
  // can implement both this and MembershipStore.
  virtual Status erase(const std::string& user_id, const std::string& node_id) = 0;
  // Extends every entry of `node_id` to expires_at_ms (the node's heartbeat).
  virtual Status refresh_node(const std::string& node_id, int64_t expires_at_ms) = 0;
  // Removes every entry of `node_id` (a node starting afresh).
  virtual Status drop_node(const std::string& node_id) = 0;
  // Deletes the entries that expired at now_ms (of nodes that died and never
  // came back), so the directory does not grow without bound. Nodes call it
  // with their heartbeat.
  virtual Status prune(int64_t now_ms) = 0;
  // For each user in order, the sorted node ids whose entries have not
  // expired at now_ms. out->size() == user_ids.size() on success.
  virtual Status nodes_of(const std::vector<std::string>& user_ids, int64_t now_ms,
                          std::vector<std::vector<std::string>>* out) = 0;
};

// Presence kept in the store, so every node can answer for users connected
// elsewhere. A (user, node) status is valid as long as the SessionDirectory
// entry of that user on that node (so a dead node's users fade to offline).
class PresenceStore {
 public:
  PresenceStore() = default;
  PresenceStore(const PresenceStore&) = delete;
  PresenceStore& operator=(const PresenceStore&) = delete;
  virtual ~PresenceStore() = default;

  // Records the status of `user_id` as seen on `node_id` (kOffline removes it).
  virtual Status set_presence(const std::string& user_id, const std::string& node_id,
                              PresenceStatus status) = 0;
  // For each user in order, the best status over the nodes whose directory
  // entries have not expired at now_ms (online > away > offline).
  virtual Status presence(const std::vector<std::string>& user_ids, int64_t now_ms,
                          std::vector<PresenceStatus>* out) = 0;
};

}  // namespace parley
