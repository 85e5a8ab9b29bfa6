// Node::Impl, the engine behind parley::Node (include/parley/node.hpp): its
// state and the declarations of its parts. The definitions are split by
// seam: node_sessions.cpp (sessions, requests, limits), node_send.cpp (the
// send pipeline: the turn, group commits and their completions),
// node_delivery.cpp (the tail log, catch-ups, fan-out, resumes, session
// output and its bound), node_lookups.cpp (requests waiting for the store), node_routing.cpp (groups, routes to peers, peer
// batches, head sync, timers) and node_notify.cpp (presence and offline
// notifications); node.cpp is the public face. Internal: not installed.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/peer_codec.hpp"
#include "core/util.hpp"
#include "parley/message_log.hpp"
#include "parley/node.hpp"

namespace parley {
namespace node_parts {

// A FIFO that allocates nothing while empty: std::deque allocates about
// 600 bytes up front, and every session holds one. A vector and the index
// of its front; the consumed prefix is dropped once it is half the vector,
// and a large buffer is given back when the FIFO empties.
template <typename T>
class Fifo {
 public:
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  const T& front() const { return items_[head_]; }
  void pop_front() {
    if (++head_ == items_.size()) {
      head_ = 0;
      if (items_.capacity() > 16) {
        std::vector<T>().swap(items_);
      } else {
        items_.clear();
      }
    } else if (head_ >= 64 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  // Gives the buffer back (for a FIFO that is rarely used, once it is empty).
  void release() {
    if (empty()) {
      std::vector<T>().swap(items_);
      head_ = 0;
    }
  }
  template <typename... Args>
  void emplace_back(Args&&... args) {
    items_.emplace_back(std::forward<Args>(args)...);
  }
  typename std::vector<T>::const_iterator begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  typename std::vector<T>::const_iterator end() const { return items_.end(); }

 private:
  std::vector<T> items_;
  size_t head_ = 0;
};

struct Subscription {
  uint64_t cursor = 0;  // last msg_id this session holds
  bool paused = false;  // pull mode, or waiting for the client to resume
  bool resume_pending = false;
  uint64_t resume_rid = 0;
  uint64_t read_job = 0;  // a page of the store out with the executor for it (0: none)
};

struct Session {
  SessionId id = 0;
  std::string user;
  std::unordered_map<std::string, Subscription> subs;
  std::vector<Frame> outbox;
  size_t outbox_bytes = 0;
  size_t unacked = 0;          // handed to the host, not yet drained
  uint64_t queued_total = 0;   // bytes ever queued
  uint64_t drained_total = 0;  // bytes the host reported written
  // Messages queued but not yet written, by the queued_total they end at.
  Fifo<std::pair<uint64_t, MessagePtr>> undrained;
  // Requests waiting, in order, for the answer of lookup_job (the first
  // one needed it; the rest keep their place behind it).
  Fifo<ClientRequest> waiting;
  uint64_t lookup_job = 0;
  // Its requests wait until the directory records the user here (with an
  // executor), so no node takes the user for offline while it is served.
  bool gated = false;
  bool presence_sub = false;
  bool receipts_sub = false;  // wants co-members' read receipts
  bool dirty = false;   // has frames to write at the end of the turn
  bool behind = false;  // over its send-queue bound: cut off at the end of the turn

  size_t pending_bytes() const { return outbox_bytes + unacked; }
};

// Pointers into the node's session and subscription maps (stable: they are
// node-based), so fan-out does no lookups. drop_subscriber keeps them valid.
struct Subscriber {
  Session* session;
  Subscription* sub;
};

struct GroupState {
  uint64_t epoch = 0;
  uint64_t epoch_learned = 0;  // the node's epoch_changes_ when `epoch` last changed
  std::vector<Subscriber> subscribers;
  bool hint_pending = false;
  int64_t next_hint_at = 0;
};

struct Route {
  std::vector<std::string> members;
  std::vector<std::string> nodes;            // peers hosting members' sessions
  std::vector<std::string> offline_members;  // no session anywhere when computed
  int64_t expires_at = 0;
};

// Who to answer for a queued append (the request itself waits in
// pending_requests_, at the same index, ready for the store).
struct EpochCursor {
  uint64_t epoch = 0;
  uint64_t cursor = 0;
};

struct PendingSend {
  SessionId session;
  uint64_t rid;
  std::string client_msg_id;  // as the client sent it
  std::string group_id;
  Node::RequestDone done;  // a send outside any session (Node::send_as): its answer
};

// A range read out with the executor, and what it is for: a gap of the
// group (until: the end of the gap) or a session's resume (session).
struct ReadWait {
  enum class For { kCatchUp, kPump } purpose = For::kCatchUp;
  std::string group_id;
  uint64_t after = 0;
  uint64_t until = 0;
  SessionId session = 0;
};

// A committed message whose group members may need a notification.
struct NotifyCandidate {
  MessagePtr message;
  std::vector<std::string> users;
};

}  // namespace node_parts
using namespace node_parts;  // for the parts of Node::Impl only (this header is internal)

class Node::Impl {
 public:
  Impl(NodeOptions options, NodeStores stores, NodeHost& host, const Clock& clock, Notifier* notifier,
       std::shared_ptr<const ClientCodec> codec)
      : opt_(std::move(options)),
        stores_(stores),
        host_(host),
        clock_(clock),
        notifier_(notifier),
        codec_(codec ? std::move(codec) : std::shared_ptr<const ClientCodec>(make_msgpack_codec())),
        random_(opt_.seed),
        detector_(opt_.gap),
        forwarder_(opt_.node_id, opt_.forward, random_,
                   [this](const std::string& dest, uint64_t call_id, const Frame& batch) {
                     host_.send_to_node(dest, call_id, batch);
                   }),
        policy_(opt_.policy),
        presence_(opt_.presence),
        log_(stores.messages, opt_.tail_per_group) {}

  // ---- lifecycle -------------------------------------------------------

  Status start();

  // ---- sessions ----------------------------------------------------------

  Status open_session(SessionId id, const std::string& user);
  void report_previous_failure(Session& s, const Status& reason);
  void close_session(SessionId id, const Status& reason);
  void on_client_frame(SessionId id, const void* data, size_t size);
  void on_client_request(SessionId id, const ClientRequest& request);
  void on_session_drained(SessionId id, size_t bytes);

  // ---- lookups (node_lookups.cpp) -----------------------------------------

  // Whether a request must wait for the store before it is served: with an
  // executor, when the node has no fresh answer for what the request's
  // handler needs (a membership, an unfollowed group's head, the head of a
  // group the client is ahead on). Without one the handlers read inline.
  bool needs_lookup(const Session& s, const ClientRequest& request) const;
  bool needs_lookup(const std::string& user, const ClientRequest& request) const;
  // The lookup a request of `user` waits for (a fresh job id).
  LookupJob lookup_for(const std::string& user, const ClientRequest& request);
  // Node::when_ready.
  void when_ready(const std::string& user, const ClientRequest& request, std::function<void()> then);
  bool member_cached(const std::string& user, const std::string& group_id) const;
  void refresh_ahead(const std::string& user, const std::string& group_id);
  void send_refreshes();
  // Queues a request behind the session's lookup (starting one if none is out).
  void wait_for_store(Session& s, const ClientRequest& request);
  void start_lookup(Session& s);
  void complete_lookup(uint64_t id, LookupResult result);
  // Serves the session's waiting requests in order until one needs the store.
  void serve_waiting(Session& s);
  // The directory put of a user's first session here is done: its sessions'
  // requests go on.
  void ungate(const std::string& user);
  void dispatch(Session& s, const ClientRequest& request);
  // The answer being replayed for (group, user), if any.
  const LookupResult* answer_for(const std::string& group_id, const std::string& user) const;
  // The head of a group: from the answer being replayed, else from the store.
  Result<GroupHead> head_of(const std::string& group_id, const std::string& user);

  // ---- the node's bookkeeping with the stores (node_routing.cpp) ------------

  using StoreDone = std::function<void(std::vector<StoreOpResult>&)>;
  JobStores job_stores() const {
    return JobStores{stores_.messages, stores_.membership, stores_.directory, stores_.presence};
  }
  // Runs ops: with an executor they leave as a StoreJob and `done` runs when
  // on_store_done brings the results; without one they run here and `done`
  // runs at once.
  void submit(std::vector<StoreOp> ops, StoreDone done);
  void complete_store_job(uint64_t id, std::vector<StoreOpResult> results);
  // A directory or presence write: with an executor it waits for the end of
  // the turn and leaves with the turn's other writes, in order.
  void write(StoreOp op);
  void send_writes();
  // Asks the stores for the routes wanted this turn (one job).
  void ask_routes();
  // The group's route is out of date (a member came or went somewhere).
  void forget_route(const std::string& group_id);
  Route make_route(const std::string& group_id, StoreOpResult& r, int64_t now);
  // Members of the group for the delivery policy: the route's, or the last
  // route's while it is read again.
  size_t member_count(const std::string& group_id, const Route* route) const;
  // Forwards (and notifies) what waited for a group's route.
  void release_unrouted(const std::string& group_id);
  // Forwards an item to the group's peer nodes, or holds it until the route is known.
  void forward_item(const std::string& group_id, const Frame& item);

  // ---- client requests ---------------------------------------------------

  // Membership check shared by every group request.
  Status authorize(const Session& s, const std::string& group_id);
  Status authorize(const std::string& user, const std::string& group_id);

  // The per-user send rate: a token bucket. 0 if the send may go now, else
  // the milliseconds until it could.
  uint64_t take_send_token(const std::string& user);
  void reply_error(Session& s, uint64_t rid, const Status& st, const std::string& group_id,
                   const std::string& cid = "");

  void handle(Session& s, const SendReq& r);
  // What a send is refused for without the store (ids, sizes, the kind's fields).
  Status validate_send(const std::string& user, const SendReq& r) const;
  void handle(Session& s, const ResumeReq& r);
  void handle(Session& s, const UnsubscribeReq& r);
  void handle(Session& s, const PullReq& r);

  // A pull by `user`, for a session or the host's HTTP API: up to r.limit
  // messages after r.after, from the tail cache where it covers them.
  Result<PullResultEv> pull(const std::string& user, const PullReq& r);
  Result<PullResultEv> pull_folded(const std::string& user, const PullReq& r);
  void handle(Session& s, const TypingReq& r);
  void handle(Session& s, const PresenceReq& r);
  void handle(Session& s, const ReadReq& r);
  void handle(Session& s, const UnreadReq& r);
  void handle(Session& s, const NotifyReq& r);
  size_t disconnect_user(const std::string& user, const std::string& why);
  void end_session(SessionId id, const Status& reason, const std::string& about);
  Status record_system(const std::string& group_id, const std::string& author, const std::string& client_msg_id,
                       const std::string& text, const std::string& meta, Node::RequestDone done);
  Status record_membership(const std::string& group_id, EntryKind kind, const std::string& user_id,
                           const std::string& subject);
  void send_as(const std::string& user, const SendReq& r, Node::RequestDone done);
  void read_as(const std::string& user, const ReadReq& r, Node::RequestDone done);
  // A read report of `user` (from session `from`, 0: none): the position
  // moves, `done` gets the ReadEv or ErrorEv, the user's other sessions hear.
  void mark_read(const std::string& user, const ReadReq& r, SessionId from, Node::RequestDone done);
  // Queues a checked send for this turn's commit.
  void queue_send(const std::string& user, const SendReq& r, PendingSend p);
  void answer_error(const PendingSend& p, const Status& st);
  // What a delivered membership entry changes here: a leave or removal ends
  // the member's subscriptions and cached membership; any of them the route.
  void apply_membership(const Message& m);
  // A session of `user` set its notification level: its sessions here but `except` are told.
  void deliver_notify_locally(const std::string& user, const std::string& group, NotifyLevel level,
                              SessionId except);

  // A local user's status changed: co-members are told, and the presence
  // store (if any) records it for other nodes. Going offline needs no store
  // write: the directory entry's erase ends it.
  void set_status(const std::string& user, PresenceStatus status);

  // ---- groups --------------------------------------------------------------

  // Starts following a group (its head becomes the delivered point).
  Result<GroupState*> ensure_group(const std::string& group_id, const std::string& user);

  // Peers that cached this group's route before this node had a member
  // session forget it, so they forward to this node from now on rather than
  // when their cache expires.
  void announce_interest(const std::string& group_id, const GroupHead& head);
  void resend_after_interest(const std::string& to, const detail::Interest& in);
  void drop_subscriber(const std::string& group_id, SessionId id);
  void member_removed(const std::string& group_id, const std::string& user);

  // Members, peer nodes and offline members of a group, cached for route_ttl_ms.
  const Route* route_for(const std::string& group_id);

  // ---- the turn ------------------------------------------------------------

  void flush();

  // The turn's sends leave as one append job: to the executor, or appended
  // here and completed at once.
  void commit_pending();
  void complete_append(uint64_t id, const Status& st, std::vector<AppendOutcome> outcomes);
  void complete_append_failed(const std::vector<PendingSend>& batch, const Status& st);
  void on_committed(const MessagePtr& m, std::vector<NotifyCandidate>* candidates);
  // The group's offline members other than the sender, as a notify candidate.
  void offline_candidates(const MessagePtr& m, const Route& route, std::vector<NotifyCandidate>* candidates);

  // A message reached this node (committed here or forwarded by a peer).
  void accept(const MessagePtr& m);

  // Whether a message of `epoch` belongs to the history this node follows for
  // the group. A newer epoch means the history was reset: the group is
  // resynced at the end of the turn. An older one is a stale leftover.
  bool in_epoch(GroupState& g, const std::string& group_id, uint64_t epoch);

  // Groups whose epoch changed under us: learn the new one from the store and
  // make every subscriber start over (EpochEv).
  void run_resyncs();

  // What the store says of a followed group: a head to catch up to, or a new epoch.
  // `asked_at`: epoch_changes_ when the heads were read; a group whose epoch
  // the node learned after that gets nothing from this (older) answer.
  void apply_head(const GroupHead& h, uint64_t asked_at = UINT64_MAX);
  // Sets a group's epoch and stamps when the node learned it.
  void set_epoch(GroupState& g, uint64_t epoch);

  // Reads missing ranges from the store for groups whose gaps timed out,
  // a page at a time, one read out per group.
  void run_catch_ups();
  void catch_up(CatchUpRequest c);
  // Offers a page read for a gap; false when the catch-up stops here (the
  // detector asks again after retry_ms if the gap is still open).
  bool apply_catch_up_page(CatchUpRequest& c, ReadResult& r);

  // ---- range reads -----------------------------------------------------------

  // Reads a range for `wait`: with an executor the job leaves the node and
  // nullopt comes back (complete_read goes on when it returns); without one
  // the store is read here and the result comes back at once.
  std::optional<ReadResult> read_range(ReadWait wait, size_t limit, uint64_t* job_id);
  void complete_read(uint64_t id, ReadResult result);

  // Moves a followed group past ids the store no longer has; its sessions
  // are told when their pump meets the hole.
  void skip_trimmed(const std::string& group_id, uint64_t trimmed);

  // Fans one in-order message out to this node's sessions.
  void deliver(const MessagePtr& m);
  void fan_out(GroupState& g, MessageLog::Entry& entry);
  void switch_mode(const std::string& group_id, GroupState& g, DeliveryMode mode);

  // Sends a PullHint to the subscribers of each pull-mode group that moved.
  void send_hints();
  bool needs_catch_up(const std::string& group_id, const Subscription& sub) const;

  // Feeds sessions that are behind their groups from the log, a page at a
  // time, while their send queues have room.
  void pump_sessions();
  void pump(Session& s);
  // Queues a page of the log to a session catching up; false when the pump
  // must stop for now (queue half full, an epoch change, a store error:
  // retried after retry_ms).
  bool apply_pump_page(Session& s, const std::string& group_id, Subscription& sub, const Status& st,
                       std::vector<MessageLog::Entry>& page, uint64_t trimmed);
  void finish_resume(Session& s, const std::string& group_id, Subscription& sub);

  // ---- peers ---------------------------------------------------------------

  Status on_peer_batch(const void* data, size_t size);

  // ---- presence ------------------------------------------------------------

  void broadcast_status(const std::string& user, PresenceStatus status);
  void broadcast_presence(const PresenceEv& ev);
  void deliver_presence_locally(const PresenceEv& ev);

  // ---- read state (decision 49) ---------------------------------------------

  // A device of `user` moved its read position: its sessions here but
  // `except` are told, and so are the nodes of the group's route.
  void share_read(const std::string& user, const ReadState& state, SessionId except);
  // What a moved position means for this node's sessions, whichever node
  // took it: the user's sessions but `except` are told, co-members who
  // asked get a receipt.
  void deliver_read_locally(const std::string& user, const ReadState& state, SessionId except);
  // A read receipt of `user` for the sessions here that asked for receipts
  // and follow the group: at once, or, within typing_throttle_ms of the
  // last one, the latest when that time is up (flush_receipts).
  void receipt(const std::string& user, const ReadState& state);
  void send_receipt(const std::string& user, const ReadState& state);
  void flush_receipts(int64_t now);

  // ---- notifications -------------------------------------------------------

  // The first bytes of `s`, at most `max`, not cutting a UTF-8 sequence.
  static std::string utf8_prefix(const std::string& s, size_t max);
  Notification notification_for(const std::string& user, const Message& m, std::string reason);
  // Notification levels (NotifyLevel) read in the notifying job.
  static bool wanted(NotifyLevel level, const Notification& n);
  static void level_ops(const std::map<std::string, std::set<std::string>>& wanted, std::vector<StoreOp>* ops,
                        std::map<std::string, size_t>* at);
  static NotifyLevel level_of(const std::vector<StoreOpResult>& r,
                              const std::map<std::string, std::set<std::string>>& asked,
                              const std::map<std::string, size_t>& at, const std::string& group,
                              const std::string& user);

  // Notifies members that were offline when their route was computed and
  // still have no session anywhere (one directory read for the whole turn).
  void notify_offline(const std::vector<NotifyCandidate>& candidates);
  bool online_elsewhere_or_here(const std::string& user, const std::vector<std::string>& nodes) const;

  // A failed session's queued messages go to the notifier, unless the user
  // is still connected elsewhere.
  void notify_undelivered(const Session& s, const Status& reason);

  // ---- output ----------------------------------------------------------------

  Frame encode(const ServerEvent& ev);

  // Every frame to a session goes through here, so this is where the
  // session's send queue is bounded.
  void queue_frame(Session& s, const Frame& f);
  void queue_message(Session& s, const MessageLog::Entry& e);
  void queue_event(Session& s, const ServerEvent& ev);

  // Cuts off the sessions that went over their bound this turn: what they
  // have not been handed is dropped (and notified), they are told, and closed.
  void cut_off_behind();
  void fell_behind(SessionId id);
  void write_outbox(Session& s);
  void write_outboxes();
  Session* session(SessionId id);

  // ---- time ----------------------------------------------------------------

  void on_timer();

  // Forgets cached routes that expired (groups nobody here sends to any more).
  void prune_routes(int64_t now);
  void prune_members(int64_t now);

  // Learns the heads of followed groups from the store: a lost last message
  // becomes a gap, a new epoch resets the group.
  void head_sync(int64_t now);

  // The store says the group's history was replaced: every subscriber must resync.
  // Subscriptions stay, at cursor 0 of the new epoch and paused until the
  // client resumes, so what a session pulls meanwhile is not pushed again.
  void reset_group(const GroupHead& h);
  void arm_timer();

  // ---- state -----------------------------------------------------------------

  NodeOptions opt_;
  NodeStores stores_;
  NodeHost& host_;
  const Clock& clock_;
  Notifier* notifier_;
  std::shared_ptr<const ClientCodec> codec_;
  Random random_;
  GapDetector detector_;
  BatchingForwarder forwarder_;
  DeliveryPolicy policy_;
  Presence presence_;
  MessageLog log_;

  std::unordered_map<SessionId, Session> sessions_;
  std::unordered_map<std::string, std::vector<SessionId>> user_sessions_;
  // Read receipts per (user, group): when the last one went out, and the
  // latest held back by the throttle; next_receipt_at_: the earliest due.
  struct ReceiptThrottle {
    int64_t sent_at = INT64_MIN / 2;
    std::optional<ReadState> held;
  };
  std::map<std::pair<std::string, std::string>, ReceiptThrottle> receipts_;
  int64_t next_receipt_at_ = INT64_MAX;
  struct SendBucket {
    double tokens;
    int64_t at_ms;
  };
  std::unordered_map<std::string, SendBucket> send_buckets_;  // users with a session here
  std::unordered_map<std::string, GroupState> groups_;
  std::unordered_map<std::string, Route> routes_;
  std::unordered_map<std::string, size_t> member_counts_;  // of the last route read, per followed group
  // group -> user -> until when that user's membership (as read from the
  // store) is trusted; see authorize().
  std::unordered_map<std::string, std::unordered_map<std::string, int64_t>> members_;
  std::unordered_map<std::string, Status> last_error_;
  // user -> group -> the furthest a closed session of that user (while others
  // stay open here) was handed; see notify_undelivered.
  std::unordered_map<std::string, std::unordered_map<std::string, EpochCursor>> handed_to_closed_;
  std::vector<PendingSend> pending_;
  std::vector<AppendRequest> pending_requests_;  // the next group commit
  std::map<uint64_t, std::vector<PendingSend>> in_flight_;  // append jobs out with the executor
  std::map<uint64_t, ReadWait> reads_;                       // read jobs out with the executor
  std::unordered_set<std::string> catching_up_;              // groups with a catch-up read out
  std::map<uint64_t, SessionId> lookups_;                    // lookup jobs out with the executor
  struct HostLookup {  // a host's request waiting for its lookup (when_ready)
    std::string group_id;
    std::string user_id;
    std::function<void()> then;
  };
  std::map<uint64_t, HostLookup> host_lookups_;
  std::map<uint64_t, StoreDone> store_jobs_;                 // store jobs out with the executor
  std::vector<StoreOp> pending_writes_;                      // this turn's directory and presence writes
  std::set<std::string> routes_wanted_;                      // routes to ask for at the end of the turn
  std::unordered_set<std::string> routing_;                  // groups with a route job out
  std::unordered_set<std::string> reroute_;                  // ... forgotten meanwhile: ask again
  // What waits for a group's route (with an executor): peer items to
  // forward, and committed messages whose offline members may need a
  // notification.
  struct Unrouted {
    std::vector<Frame> items;
    std::vector<MessagePtr> messages;
  };
  std::unordered_map<std::string, Unrouted> unrouted_;
  // Memberships being read again before they expire (refresh_ahead).
  std::map<std::string, std::set<std::string>> refreshing_;
  std::unordered_set<std::string> refresh_out_;  // groups with a refresh job out
  bool members_to_refresh_ = false;
  std::unordered_map<std::string, int> putting_;  // users with directory puts out (their sessions wait)
  // Users whose directory entry here is being erased: until it is, the
  // store still shows them (and their presence) on this node, so this
  // node answers presence for them from its own state.
  std::unordered_map<std::string, int> erasing_;
  bool head_sync_out_ = false;  // a head sync's job is out
  uint64_t epoch_changes_ = 0;  // how often a group's epoch changed here (stamps GroupState::epoch_learned)
  int64_t resync_after_ = 0;    // a failed resync is tried again from then
  // While a lookup's first request is served: its job and answer.
  const LookupJob* answer_job_ = nullptr;
  const LookupResult* answer_ = nullptr;
  uint64_t next_job_ = 1;
  std::set<SessionId> pump_set_;
  std::set<SessionId> pump_later_;  // their pump failed to read: again at retry_pump_at_
  std::vector<SessionId> dirty_;
  std::vector<SessionId> behind_;
  std::set<std::string> resync_;  // groups whose epoch changed, handled at the end of the turn  // sessions
                                  // with frames to write, each once
  int64_t next_head_sync_ = 0;
  int64_t next_dir_refresh_ = 0;
  int64_t retry_pump_at_ = 0;
  int64_t armed_at_ = INT64_MAX;
  bool started_ = false;
  NodeStats stats_;

  friend class Node;
};

}  // namespace parley
