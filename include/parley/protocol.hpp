// The client protocol as values: requests a client sends to its node and
// events the node sends back, plus the ClientCodec that turns them into bytes.
//
// The core speaks in these structs; a codec turns them into frames. The
// library ships a msgpack codec (make_msgpack_codec); a host may supply its
// own (make_json_codec, used by the example server). A node encodes each event once and
// shares the bytes between every recipient session.
//
// Thread rules: codecs are stateless and may be shared between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "parley/message.hpp"
#include "parley/status.hpp"

namespace parley {

// Bytes ready to be written to a session, shared by every recipient.
using Frame = std::shared_ptr<const std::string>;

enum class DeliveryMode : int { kPush = 0, kPull = 1 };
enum class PresenceStatus : int { kOffline = 0, kOnline = 1, kAway = 2 };

// ---- client -> node ----
// Every request may carry a client-chosen rid echoed in its answer or error.

// Append an entry to a group's log: a message (frame "send"), an edit of
// one's own message ("edit"), its delete ("delete") or a reaction ("react").
// `entry` as in Message; validate_entry says which kind takes which field. Answered by Ack (also for a duplicate resend) or Error.
struct SendReq {
  uint64_t rid = 0;
  std::string group_id;
  std::string client_msg_id;
  std::string contents;  // a reaction: its key
  EntryFields entry{};
  // The epoch of the client's copy, which the ids it names (target,
  // reply_to) belong to; 0: whatever is current. A change or reply naming an
  // id of an epoch that was reset is refused with epoch_mismatch, not applied
  // to the message that now has that id.
  uint64_t epoch = 0;
};
// Subscribe to a group's live messages, first receiving every message after
// `after` (after = last msg_id the client holds; 0 = from the beginning).
// epoch = the epoch the client's copy belongs to (0 = none yet). Answered by
// the missed messages, then Resumed, then live messages.
struct ResumeReq {
  uint64_t rid = 0;
  std::string group_id;
  uint64_t after = 0;
  uint64_t epoch = 0;
};
// Stop receiving a group's live messages.
struct UnsubscribeReq {
  uint64_t rid = 0;
  std::string group_id;
};
// Read up to `limit` messages after `after`. Answered by PullResult, or by
// an epoch_mismatch error when `epoch` (that of the client's copy, 0 = none)
// is not the group's: `after` then means nothing.
//
// Folded (`fold`), it reads history as it stands: the ids in (after, after +
// limit], each message with its latest contents, reaction counts and reply
// count as of the answer's head (edits, deletes and reactions fold into
// their messages and are not listed). Always read from the store; it does
// not move a subscription's cursor.
struct PullReq {
  uint64_t rid = 0;
  std::string group_id;
  uint64_t after = 0;
  uint32_t limit = 100;
  uint64_t epoch = 0;
  bool fold = false;
};
// "I am typing in this group." Throttled by the node.
struct TypingReq {
  uint64_t rid = 0;
  std::string group_id;
};
// Set one's own status (online / away) and whether to receive presence
// updates of co-members.
struct PresenceReq {
  uint64_t rid = 0;
  PresenceStatus status = PresenceStatus::kOnline;
  bool subscribe = true;
  bool receipts = false;  // receive co-members' read receipts (ReceiptEv) in the groups it resumed
};

// "I have read the group up to msg_id of epoch" (docs/decisions.md 49).
// The read position moves only forward and is the user's on every device
// and node. epoch and msg_id are required; an id past the head counts as
// the head. Answered by Read; the user's other sessions get Read too.
struct ReadReq {
  uint64_t rid = 0;
  std::string group_id;
  uint64_t msg_id = 0;
  uint64_t epoch = 0;
};
// The read state (position, unread and mention counts) of these groups, or
// with none named of every group of the user. Answered by Unread.
struct UnreadReq {
  uint64_t rid = 0;
  std::vector<std::string> group_ids;
};

// Which offline notifications a member gets for a group (the Notifier's):
// every message (the default), only those that mention the member, or none.
// Stable numbers (stored, and the C API mirrors them).
enum class NotifyLevel : int { kAll = 0, kMentions = 1, kNone = 2 };
// "all", "mentions", "none". Never null.
const char* notify_level_name(NotifyLevel level);
// The level of a name of notify_level_name; false for any other text.
bool parse_notify_level(const std::string& name, NotifyLevel* level);

// Sets the user's notification level for the group (`level` given), or asks
// for it. Answered by Notify; the user's other sessions on this node get
// Notify too when it was set.
struct NotifyReq {
  uint64_t rid = 0;
  std::string group_id;
  std::optional<NotifyLevel> level;
};

using ClientRequest = std::variant<SendReq, ResumeReq, UnsubscribeReq, PullReq, TypingReq, PresenceReq, ReadReq,
                                   UnreadReq, NotifyReq>;

// ---- node -> client ----

struct AckEv {
  uint64_t rid = 0;
  std::string group_id;
  std::string client_msg_id;
  uint64_t msg_id = 0;
  int64_t timestamp_ms = 0;
  bool duplicate = false;
  uint64_t epoch = 0;  // of the group's log the message is in
};
struct MessageEv {
  MessagePtr message;
  // A message of a folded history answer carries its fold (HTTP history
  // with fold=1); live deliveries never do.
  std::shared_ptr<const Fold> fold = nullptr;
};
// Catch-up for a ResumeReq is complete; live messages follow.
struct ResumedEv {
  uint64_t rid = 0;
  std::string group_id;
  uint64_t head = 0;
  uint64_t epoch = 0;
  DeliveryMode mode = DeliveryMode::kPush;
};
struct PullResultEv {
  uint64_t rid = 0;
  std::string group_id;
  std::vector<MessagePtr> messages;
  uint64_t head = 0;   // newest id the node knows; more to pull if > last
  uint64_t epoch = 0;  // of the group's history head and messages belong to
  // A folded answer: the page covers ids (after, to] and is folded as of
  // `head` (entries up to head are in it: apply only later ones); folds[i]
  // goes with messages[i].
  bool folded = false;
  uint64_t to = 0;
  std::vector<Fold> folds;
};
// The group switched between push and pull for this node.
struct ModeEv {
  std::string group_id;
  DeliveryMode mode = DeliveryMode::kPush;
  uint64_t head = 0;
};
// Pull mode: messages up to `head` are available; pull them.
struct PullHintEv {
  std::string group_id;
  uint64_t head = 0;
};
struct PresenceEv {
  std::string user_id;
  std::string group_id;  // the shared group this update is for
  PresenceStatus status = PresenceStatus::kOnline;
  bool typing = false;
  int64_t expires_at_ms = 0;  // typing: when to stop showing it
};
// The group's history was reset (restore from backup, data loss). Drop the
// local copy of the group and resume from 0 with the new epoch.
struct EpochEv {
  std::string group_id;
  uint64_t epoch = 0;
  uint64_t head = 0;
};
// The session's send queue overflowed; the node closes it. Reconnect and resume.
struct FellBehindEv {
  uint64_t queued_bytes = 0;
};
// A user's read state in a group: read up to msg_id (0: nothing, or a
// position of an older epoch); `unread` messages after it from others that
// are not deleted, `mentions` of them mentioning the user; counted up to
// `head`. A client keeps the counts live from the entries it receives after
// `head` (decision 49).
struct ReadState {
  std::string group_id;
  uint64_t epoch = 0;
  uint64_t msg_id = 0;
  uint64_t head = 0;
  uint64_t unread = 0;
  uint64_t mentions = 0;
};
// The answer to a ReadReq (rid), and what the user's other sessions are
// told when one of its devices moved the position (rid 0).
struct ReadEv {
  uint64_t rid = 0;
  ReadState state;
};
// The answer to an UnreadReq: one state per group, in the order asked (all
// groups: sorted by id).
struct UnreadEv {
  uint64_t rid = 0;
  std::vector<ReadState> groups;
};
// A co-member read group_id up to msg_id of epoch (a read receipt), to
// sessions that asked for receipts (PresenceReq::receipts) and resumed the
// group. At most one per (user, group) every typing_throttle_ms; the latest
// position always follows.
struct ReceiptEv {
  std::string group_id;
  std::string user_id;
  uint64_t epoch = 0;
  uint64_t msg_id = 0;
};
// The user's notification level for a group: the answer to a NotifyReq
// (rid), and what its other sessions on the node are told when one set it
// (rid 0).
struct NotifyEv {
  uint64_t rid = 0;
  std::string group_id;
  NotifyLevel level = NotifyLevel::kAll;
};
struct ErrorEv {
  uint64_t rid = 0;
  Code code = Code::kInternal;
  std::string message;
  std::string group_id;
  std::string client_msg_id;
  uint64_t retry_after_ms = 0;  // limit_exceeded: when to try again (0: not given)
  // Not about a request: "previous_connection" (why this user's previous
  // connection to the node failed, told on the next one) or "disconnected"
  // (the app ended this connection: Node::disconnect_user); else empty.
  std::string about{};
};

using ServerEvent = std::variant<AckEv, MessageEv, ResumedEv, PullResultEv, ModeEv, PullHintEv, PresenceEv,
                                 EpochEv, FellBehindEv, ErrorEv, ReadEv, UnreadEv, ReceiptEv, NotifyEv>;

class ClientCodec {
 public:
  ClientCodec() = default;
  ClientCodec(const ClientCodec&) = delete;
  ClientCodec& operator=(const ClientCodec&) = delete;
  virtual ~ClientCodec() = default;

  // Parses one client frame. Malformed input: kInvalidArgument with a
  // message saying what is wrong. Never throws.
  virtual Result<ClientRequest> decode_request(const void* data, size_t size, const Limits& limits) const = 0;
  virtual std::string encode_event(const ServerEvent& event) const = 0;
  // For the error about a frame decode_request refused: whatever of rid,
  // group id and client_msg_id can still be read from it (left as they are
  // otherwise), so the error names the request. Never throws.
  virtual void peek_ids(const void* data, size_t size, const Limits& limits, uint64_t* rid,
                        std::string* group_id, std::string* client_msg_id) const {
    (void)data, (void)size, (void)limits, (void)rid, (void)group_id, (void)client_msg_id;
  }

  // The other direction, for clients and tests.
  virtual std::string encode_request(const ClientRequest& request) const = 0;
  virtual Result<ServerEvent> decode_event(const void* data, size_t size) const = 0;
};

// Compact msgpack maps with short keys; see docs/protocol-core.md.
std::unique_ptr<ClientCodec> make_msgpack_codec();
// The same schema as JSON objects in text frames (contents as UTF-8 strings);
// see docs/protocol.md. Frames over json_max_frame_bytes(limits) are refused
// with too_large before parsing.
std::unique_ptr<ClientCodec> make_json_codec();
size_t json_max_frame_bytes(const Limits& limits);

const char* delivery_mode_name(DeliveryMode mode);
const char* presence_status_name(PresenceStatus status);

}  // namespace parley
