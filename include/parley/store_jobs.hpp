// Store work as data: what a Node asks of its stores, as values that leave
// the node's turn, and what comes back (docs/decisions.md, "Store work
// leaves the node as data").
//
// A node given a StoreExecutor (NodeStores::executor) calls no store inside
// its turns for the work below: it hands the executor jobs and goes on; the
// host feeds the outcomes back on the node's thread (Node::on_append_done,
// on_read_done, on_lookup_done, on_store_done). Without an executor the node
// runs the same jobs inline with the run_* functions here: the synchronous
// path. An executor runs them with the same functions, on any thread, over
// store instances of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "parley/message.hpp"
#include "parley/protocol.hpp"
#include "parley/status.hpp"
#include "parley/store.hpp"

namespace parley {

// A group commit that leaves the node as data: the sends of one turn, in
// order. The executor appends them to the message store (MessageStore::append,
// on any thread it likes) and the host hands the outcome back with
// Node::on_append_done(id, ...), from the node's thread, like any other input.
struct AppendJob {
  uint64_t id = 0;
  std::vector<AppendRequest> requests;
};

// A range read that leaves the node as data: the messages of group_id after
// `after`, at most `limit` (MessageStore::read). The node reads this way to
// fill a gap that timed out and to feed a session resuming from before the
// tail it caches. The host hands the result back with Node::on_read_done.
struct ReadJob {
  uint64_t id = 0;
  std::string group_id;
  uint64_t after = 0;
  size_t limit = 0;
};

// What a ReadJob found.
struct ReadResult {
  // kTrimmed: retention removed `after + 1`; `trimmed` then says how far
  // (ids <= trimmed are gone; 0 if the store could not tell).
  Status status;
  std::vector<Message> messages;
  uint64_t trimmed = 0;
};

// Runs a ReadJob on a store: what an executor does on its thread, and what
// the node does inline without one.
ReadResult run_read(MessageStore& store, const ReadJob& job);

// Appends a group commit (MessageStore::append) after checking each
// message's mentions against the group's members: a request mentioning a
// non-member gets kInvalidArgument as its outcome and is not stored, the
// rest of the batch goes on. A batch that mentions nobody reads no
// membership. Without a membership store (null) mentions are not checked.
// May move from `requests`.
Status run_append(MessageStore& messages, MembershipStore* membership, std::vector<AppendRequest>& requests,
                  std::vector<AppendOutcome>* out);

// What the node must know before it serves a client's request on a group it
// has no fresh answer for: whether the user is a member (and, if not, whether
// the group exists), and the group's head. The request waits, with the
// session's later requests behind it, until Node::on_lookup_done brings the
// answer.
// A pull also reads its range (limit > 0) when the tail cache cannot answer.
struct LookupJob {
  uint64_t id = 0;
  std::string group_id;
  std::string user_id;
  uint64_t after = 0;
  size_t limit = 0;   // 0: no range to read
  bool fold = false;  // read the range folded (MessageStore::read_folded), for user_id
};

struct LookupResult {
  Status status;  // a store error: the waiting request is answered with it
  bool member = false;
  bool group_exists = false;
  GroupHead head;  // of group_id (epoch 0: no history)
  Status read_status;  // of the range, when one was asked
  std::vector<Message> messages;
  bool folded = false;  // the range was read folded: into `page`, not `messages`
  FoldedPage page;
};

// Runs a LookupJob on the stores.
LookupResult run_lookup(MessageStore& messages, MembershipStore& membership, const LookupJob& job);

// The node's own bookkeeping with the stores, batched per turn: group heads
// (the head sync, resyncs), routes (a group's members and the nodes hosting
// them), whether users are connected anywhere (before notifying them), a
// user's groups (for presence), and the writes of the session directory and
// the presence store. The ops of one job run in order; each gets a result.
struct HeadsOp {
  std::vector<std::string> group_ids;
};
struct RouteOp {  // members of the group, and the nodes of each at now_ms
  std::string group_id;
  int64_t now_ms = 0;
};
struct NodesOfOp {
  std::vector<std::string> user_ids;
  int64_t now_ms = 0;
};
struct GroupsOfOp {
  std::string user_id;
};
struct MembersOfOp {  // which of the users are members of the group (refreshing the membership cache)
  std::string group_id;
  std::vector<std::string> user_ids;
};
struct DirectoryPutOp {
  std::string user_id;
  std::string node_id;
  int64_t expires_at_ms = 0;
};
struct DirectoryEraseOp {
  std::string user_id;
  std::string node_id;
};
struct DirectoryRefreshOp {  // the node's heartbeat: extend its entries, prune the expired
  std::string node_id;
  int64_t expires_at_ms = 0;
  int64_t now_ms = 0;
};
struct PresenceOp {  // needs a PresenceStore; without one it does nothing
  std::string user_id;
  std::string node_id;
  PresenceStatus status = PresenceStatus::kOnline;
};
// A user's read state in groups (decision 49): its read position and unread
// counts in each of group_ids (none: every group of the user, sorted). With
// `mark` (one group only) the position first moves forward to it: an id past
// the head counts as the head; an epoch other than the log's is refused
// with kEpochMismatch. Not a member of a group: kNotFound.
struct UnreadOp {
  std::string user_id;
  std::vector<std::string> group_ids;
  std::optional<ReadPosition> mark;
};
// The notification levels of users in a group (a non-member's: none), read
// before offline members are notified.
struct NotifyLevelsOp {
  std::string group_id;
  std::vector<std::string> user_ids;
};
// Sets a member's notification level (`level` given) and reads it back.
// Not a member: kNotFound.
struct NotifyLevelOp {
  std::string user_id;
  std::string group_id;
  std::optional<NotifyLevel> level;
};
// The host's own store work (parley-server's HTTP routes: a group created,
// a member list read), run where the node's store jobs run: on the
// executor's thread with its store instances, in order with the node's
// store jobs (StoreExecutor::run; reads, lookups and appends have their own
// order), or inline without an executor (Node::run_host). `work` may touch
// only the stores it is given and what it owns (it runs on another thread);
// what it returns is the op's status.
struct JobStores;
struct HostOp {
  std::function<Status(const JobStores&)> work;
};
using StoreOp = std::variant<HeadsOp, RouteOp, NodesOfOp, GroupsOfOp, MembersOfOp, DirectoryPutOp,
                             DirectoryEraseOp, DirectoryRefreshOp, PresenceOp, UnreadOp, NotifyLevelsOp,
                             NotifyLevelOp, HostOp>;

struct StoreOpResult {
  Status status;
  std::vector<GroupHead> heads;                  // HeadsOp
  std::vector<std::string> users;                // RouteOp: the members; GroupsOfOp: the groups;
                                                 // MembersOfOp: the users asked who are members
  std::vector<std::vector<std::string>> nodes;   // RouteOp, NodesOfOp: per user, sorted
  std::vector<ReadState> reads;                  // UnreadOp: per group
  bool moved = false;                            // UnreadOp with mark: the position moved
  std::vector<NotifyLevel> levels;               // NotifyLevelsOp: per user; NotifyLevelOp: one
};

struct StoreJob {
  uint64_t id = 0;
  std::vector<StoreOp> ops;
};

// The stores a job runs on (presence may be null).
struct JobStores {
  MessageStore& messages;
  MembershipStore& membership;
  SessionDirectory& directory;
  PresenceStore* presence = nullptr;
};

// What an UnreadOp does, for a host that reads a user's read states itself
// (the HTTP API's group list): fills result->reads (and result->moved).
Status run_unread(MessageStore& messages, MembershipStore& membership, const UnreadOp& op, StoreOpResult* result);

// What a NotifyLevelOp does (the HTTP API's route too): result->levels[0].
Status run_notify_level(MembershipStore& membership, const NotifyLevelOp& op, StoreOpResult* result);

// The answer to "may `user_id` act on `group_id`": ok for a member, else
// kNotFound (no such group) or kPermissionDenied (not a member), with the
// messages every request's membership check gives.
Status member_status(bool member, bool group_exists, const std::string& user_id, const std::string& group_id);
// The same, read from the store (a store error is returned as is).
Status check_member(MembershipStore& membership, const std::string& user_id, const std::string& group_id);

// Runs every op of a job in order; one result per op.
std::vector<StoreOpResult> run_store_job(const JobStores& stores, const StoreJob& job);

// Runs a node's store work off its turn. Without one the node does it
// inline, inside its turn, and completes at once: the synchronous path.
class StoreExecutor {
 public:
  StoreExecutor() = default;
  StoreExecutor(const StoreExecutor&) = delete;
  StoreExecutor& operator=(const StoreExecutor&) = delete;
  virtual ~StoreExecutor() = default;
  // Take the job; its outcome must come back exactly once (a node that is
  // destroyed first just never sees it). Reads may be answered in any order
  // relative to appends and to each other.
  virtual void append(AppendJob job) = 0;
  virtual void read(ReadJob job) = 0;
  virtual void lookup(LookupJob job) = 0;
  // The node's bookkeeping (see StoreJob). Jobs must run in the order given
  // (a directory write before a later read of it).
  virtual void run(StoreJob job) = 0;
};


}  // namespace parley
