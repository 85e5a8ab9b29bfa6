// Node: the sans-I/O chat engine of one server.
//
// A Node holds the sessions of the clients connected to this server and the
// state of the groups they follow. It does no I/O and starts no threads: the
// host feeds it events (a session opened or closed, a client frame, a batch
// from a peer node, a timer fired) and it acts through the NodeHost interface
// (write frames to a session, send a batch to a node, arm the timer), the
// stores and the Notifier.
//
// What it guarantees, with the stores it is given (see docs/architecture.md):
//  - per group, every subscribed session receives messages in msg_id order
//    with no hole and no duplicate, across reconnects and node failures;
//  - a send is acknowledged only after the store committed it; a resend with
//    the same client_msg_id is acknowledged with the original msg_id;
//  - forwarding to peers is batched, bounded and best effort; what is lost
//    is healed from the store by gap detection and by syncing group heads
//    about once a second;
//  - each session has a bounded send queue; a session that falls behind is
//    told so and closed, and resumes later.
//
// Turns: input calls only queue work; the host calls flush() after feeding a
// batch of inputs (one turn of its loop). flush() commits every queued send in
// one store transaction (group commit), fans out, and writes each session's
// pending frames in one send_to_session call. on_timer() flushes by itself.
//
// Threading: a Node and everything it calls (host, stores, notifier) are used
// from one thread. NodeHost methods are called on that thread, from inside
// Node calls; they must not call back into the Node (queue and return).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "parley/batching_forwarder.hpp"
#include "parley/clock.hpp"
#include "parley/delivery_policy.hpp"
#include "parley/gap_detector.hpp"
#include "parley/message.hpp"
#include "parley/notifier.hpp"
#include "parley/presence.hpp"
#include "parley/protocol.hpp"
#include "parley/status.hpp"
#include "parley/store.hpp"
#include "parley/store_jobs.hpp"

namespace parley {

using SessionId = uint64_t;

class NodeHost {
 public:
  NodeHost() = default;
  NodeHost(const NodeHost&) = delete;
  NodeHost& operator=(const NodeHost&) = delete;
  virtual ~NodeHost() = default;

  // Writes `frames` to the session in order, as one write if it can. The
  // frames are shared; keep the pointers, not copies. Report bytes actually
  // written with Node::on_session_drained (that is the backpressure signal).
  virtual void send_to_session(SessionId session, const std::vector<Frame>& frames) = 0;
  // Closes a session the node gave up on (it fell behind). The node has
  // already forgotten it.
  virtual void close_session(SessionId session, const Status& reason) = 0;
  // Sends a batch to a peer node. Report the outcome later with
  // Node::on_peer_result(node_id, call_id, ok); a missing report counts as a
  // failure after the forwarder's call timeout.
  virtual void send_to_node(const std::string& node_id, uint64_t call_id, const Frame& batch) = 0;
  // Asks for on_timer() at or soon after at_ms (replaces the previous request).
  virtual void set_timer(int64_t at_ms) = 0;
};

// The stores a node works on; they must outlive it. Several nodes may share them.
struct NodeStores {
  MessageStore& messages;
  MembershipStore& membership;
  SessionDirectory& directory;
  // Optional: presence shared between nodes through the store (Redis). Without
  // it, presence of users on other nodes comes from what peers forward.
  PresenceStore* presence = nullptr;
  // Optional: runs the appends (see StoreExecutor). Null: inline.
  StoreExecutor* executor = nullptr;
};

namespace detail {
// Deliberate bugs, for proving that the simulation's checker catches them.
// Never set outside tests.
struct Mutations {
  bool no_gap_detection = false;   // deliver whatever arrives, in arrival order
  bool no_head_sync = false;       // never learn heads from the store
  bool no_dedup = false;           // append without the client's idempotency key
  bool ack_before_commit = false;  // acknowledge sends on receipt
  bool ack_before_completion = false;  // acknowledge sends when their append job leaves the node
  bool ignore_epochs = false;      // treat every epoch as the one followed
};
}  // namespace detail

struct NodeOptions {
  std::string node_id = "node-1";
  Limits limits;
  GapDetector::Options gap;
  BatchingForwarder::Options forward;
  DeliveryPolicy::Options policy;
  Presence::Options presence;
  size_t tail_per_group = 1024;          // messages cached per group
  int64_t head_sync_ms = 1000;           // period of the group-head sync
  int64_t directory_ttl_ms = 30000;      // session-directory entries; refreshed every third
  int64_t route_ttl_ms = 1000;           // how long a group's route (peer nodes) is reused
  // How long a membership read from the store is trusted for authorising a
  // user's requests without reading it again. Removals end it at once on
  // every node told with member_removed(); this bounds how long a node that
  // missed the notice still accepts a removed member. Non-members are
  // always checked against the store (a join elsewhere counts at once).
  int64_t membership_ttl_ms = 10000;
  size_t session_queue_bytes = 1 << 20;  // per-session bound on unwritten bytes
  size_t catch_up_page = 256;            // messages per catch-up read
  // Requests a session may have waiting for a lookup; past it they are
  // refused with limit_exceeded.
  size_t max_waiting_requests = 256;
  // A session that failed is reported to the user's next session on this
  // node (an error event after it opens). Off when the host reports it
  // itself: parley-server's shards share one report per user.
  bool report_last_failure = true;
  int64_t pull_hint_ms = 100;            // pull mode: hints per group at most this often
  size_t notify_preview_bytes = 64;
  // Per-user limits on this node (0: none). A user over max_sessions_per_user
  // cannot open another session (limit_exceeded); sends beyond
  // send_rate_per_user a second (with bursts of send_burst_per_user) are
  // refused with limit_exceeded and retry_after_ms, and change nothing.
  size_t max_sessions_per_user = 0;
  double send_rate_per_user = 0;
  double send_burst_per_user = 20;
  uint64_t seed = 1;  // for phases and jitter
  detail::Mutations mutations;
};

struct NodeStats {
  uint64_t sends = 0;  // sends received from clients
  uint64_t acks = 0;
  uint64_t duplicate_sends = 0;
  uint64_t send_errors = 0;
  uint64_t commits = 0;     // store transactions (group commits)
  uint64_t deliveries = 0;  // message frames queued to sessions
  uint64_t peer_batches_in = 0;
  uint64_t peer_messages_in = 0;
  uint64_t resent_on_interest = 0;  // messages sent again to a node that started following their group
  uint64_t catch_ups = 0;  // gap catch-up reads
  uint64_t catch_up_messages = 0;
  uint64_t head_syncs = 0;
  uint64_t mode_switches = 0;
  uint64_t pull_hints = 0;
  uint64_t pulls = 0;
  uint64_t notifications = 0;
  uint64_t fell_behind = 0;
  uint64_t store_errors = 0;
  uint64_t bad_frames = 0;
  uint64_t membership_reads = 0;  // authorisations that had to ask the membership store
};

class Node {
 public:
  // `codec` encodes client frames (default: msgpack). `notifier` may be null.
  Node(NodeOptions options, NodeStores stores, NodeHost& host, const Clock& clock,
       Notifier* notifier = nullptr, std::shared_ptr<const ClientCodec> codec = nullptr);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Drops directory entries a previous incarnation of this node left and arms
  // the timers. Call once before anything else.
  Status start();

  // A client authenticated as `user_id` connected. kAlreadyExists if the id is
  // in use; kInvalidArgument for a bad user id or session id 0 (the node's
  // "no session": what it does outside any session is answered to nobody).
  Status open_session(SessionId session, const std::string& user_id);
  // Tells an open session why its user's previous connection failed (an
  // error event, queued). The node does this itself unless
  // NodeOptions::report_last_failure is off and the host keeps the reason.
  void report_previous_failure(SessionId session, const Status& reason);
  // The connection ended. `reason` ok: a clean close; otherwise the error
  // (undelivered messages are notified, and the reason is reported to the
  // user's next session on this node). Unknown ids are ignored.
  void close_session(SessionId session, const Status& reason);
  // One frame from the client; decoded with the codec. Bad frames are
  // answered with an ErrorEv and change nothing.
  void on_client_frame(SessionId session, const void* data, size_t size);
  void on_client_request(SessionId session, const ClientRequest& request);
  // The host wrote `bytes` of what send_to_session handed it.
  void on_session_drained(SessionId session, size_t bytes);

  // A batch from a peer node (the bytes another node's send_to_node sent).
  // kInvalidArgument for a malformed batch (text that is not UTF-8
  // included), kTooLarge for an id or contents over the limits; nothing of a
  // refused batch is applied.
  Status on_peer_batch(const void* data, size_t size);
  void on_peer_result(const std::string& node_id, uint64_t call_id, bool ok);

  // A pull on behalf of `user_id` outside any session (the host's HTTP API):
  // the answer a session's PullReq gets, served from the tail cache when it
  // covers `after`. Errors as for the request (not_found, permission_denied,
  // epoch_mismatch, unavailable).
  Result<PullResultEv> pull(const std::string& user_id, const PullReq& request);
  // The membership check every request of `user_id` on `group_id` passes:
  // invalid_argument (bad id), not_found (no such group), permission_denied
  // (not a member), or the store's error.
  Status authorize(const std::string& user_id, const std::string& group_id);

  // Ends every session of `user_id` on this node (the app's "disconnect
  // everywhere": call it on every node): each gets an `error` event
  // (permission_denied, "about":"disconnected", `why` in its message) and is
  // closed (NodeHost::close_session). Returns how many were closed. The
  // user may connect again.
  size_t disconnect_user(const std::string& user_id, const std::string& why);
  // Ends one session: it gets an `error` event with `reason` marked
  // "about":`about` (after what was queued for it), and is closed
  // (NodeHost::close_session). parley-server ends a session whose token
  // expired this way ("token_expired"). Nothing for an unknown session.
  void end_session(SessionId session, const Status& reason, const std::string& about);
  // `user_id` left `group_id` (or was removed): its sessions here stop
  // receiving the group at once, and its requests on the group are refused
  // from now on (the node's membership cache forgets it). Call on every
  // node; one that is not told learns it within membership_ttl_ms.
  void member_removed(const std::string& group_id, const std::string& user_id);
  // Records a change of the group's members as an entry of its log, after
  // the host made it in the MembershipStore: kJoin / kLeave (`user_id`
  // joined or left) or kRemoved (`user_id` removed `subject`). It gets a
  // dense id like a message, is appended with this turn's commit (answered
  // to nobody), and reaches every member's sessions in order; every node
  // that delivers a leave or removal also does member_removed() for it.
  // kInvalidArgument for another kind or a bad id.
  Status record_membership(const std::string& group_id, EntryKind kind, const std::string& user_id,
                           const std::string& subject = "");
  // Records a notice from the app itself (a match result, a rule change) as
  // a kSystem entry of the group's log: `author` names the app's voice (any
  // id, not a member), `text` its contents, `meta` an optional JSON object
  // (as a message's). Like record_membership it gets the next id, is
  // appended with this turn's commit (answered to nobody) and reaches every
  // member's sessions in order; it counts as unread for nobody and notifies
  // nobody. A non-empty `client_msg_id` makes a resend a duplicate (stored
  // once), as for a send. kInvalidArgument or kTooLarge for bad input.
  // `done`, if given, is answered after the commit (on the node's thread)
  // with the AckEv ("dup" for a resend) or the ErrorEv, as send_as's is.
  Status record_system(const std::string& group_id, const std::string& author, const std::string& client_msg_id,
                       const std::string& text, const std::string& meta = "",
                       std::function<void(const ServerEvent&)> done = nullptr);
  // A send (message, edit, delete or reaction) by `user_id` outside any
  // session, for a host's own API (parley-server's POST
  // /v1/groups/{g}/messages): checked as a session's send is (limits,
  // membership, the send rate), appended with the next commit, and answered
  // by `done`, on the node's thread, with the AckEv or ErrorEv a session
  // would get, exactly once (at once when refused before the store). The
  // node's membership check may read the store inline, as authorize() does,
  // unless the call is made inside when_ready().
  using RequestDone = std::function<void(const ServerEvent&)>;
  void send_as(const std::string& user_id, const SendReq& request, RequestDone done);
  // A read report of `user_id` outside any session (parley-server's POST
  // /v1/groups/{g}/read): as a session's `read`, answered by `done` with the
  // ReadEv or ErrorEv; when the position moved, the user's sessions, on
  // every node, are told as for a session's report.
  void read_as(const std::string& user_id, const ReadReq& request, RequestDone done);

  // A host's request outside any session (send_as, read_as, pull) may need
  // the store first: a membership the node has not cached, a range its tail
  // cache does not hold, a folded page. With an executor, when_ready() then
  // sends a LookupJob and runs `then` on the node's thread once
  // on_lookup_done brings the answer; inside `then` the request's calls
  // (send_as, read_as, pull, authorize) use that answer instead of reading
  // the store. Otherwise (or without an executor) `then` runs at once.
  // Dropped if the node is destroyed first.
  void when_ready(const std::string& user_id, const ClientRequest& request, std::function<void()> then);
  // The host's own store work (a group created, a member list read: see
  // HostOp), run where the node's store jobs run: on the executor's thread
  // with its store instances, in order with the node's store jobs, or inline
  // without an executor. `done` then runs on the node's thread with the
  // work's status. Dropped if the node is destroyed first.
  using HostWork = std::function<Status(const JobStores&)>;
  void run_host(HostWork work, std::function<void(const Status&)> done);

  // The outcome of an AppendJob handed to the StoreExecutor: ok with one
  // outcome per request, or the error (every send of the job is answered with
  // it). Acks, fan-out, forwarding and notifications of the job happen here;
  // flush() afterwards writes them. Unknown ids (a job of a node that was
  // restarted) are ignored.
  void on_append_done(uint64_t job, const Status& status, std::vector<AppendOutcome> outcomes);
  // The result of a ReadJob handed to the StoreExecutor: the catch-up or the
  // resume it was read for goes on from here (the next page leaves as
  // another job). A result for a session or group that went away meanwhile,
  // or for an unknown id, is dropped.
  void on_read_done(uint64_t job, ReadResult result);
  // The answer to a LookupJob: the session's waiting requests are served, in
  // order, until one needs the store again. Dropped if the session closed.
  void on_lookup_done(uint64_t job, LookupResult result);
  // The results of a StoreJob (one per op): heads applied, routes cached and
  // what waited for them forwarded, directory writes done.
  void on_store_done(uint64_t job, std::vector<StoreOpResult> results);

  void on_timer();
  // Ends a turn: commits queued sends (hands them to the executor, or
  // appends them inline), fans out, writes frames, re-arms the timer.
  void flush();
  // Append jobs handed to the executor and not yet completed.
  size_t appends_in_flight() const;
  // Read jobs handed to the executor and not yet completed.
  size_t reads_in_flight() const;
  // Lookup jobs handed to the executor and not yet completed.
  size_t lookups_in_flight() const;
  // Store jobs (bookkeeping) handed to the executor and not yet completed.
  size_t store_jobs_in_flight() const;

  const NodeStats& stats() const;
  const BatchingForwarder::Stats& forwarder_stats() const;
  // Items waiting to be forwarded to `node_id` (bounded by the forwarder's
  // max_queued_bytes: past it the oldest are dropped and healed from the store).
  size_t peer_queued_items(const std::string& node_id) const;
  const std::string& id() const;
  DeliveryMode mode(const std::string& group_id) const;
  size_t session_count() const;
  // Presence of a user as this node knows it.
  PresenceStatus presence_of(const std::string& user_id) const;
  // Presence of several users: local users as this node knows them, others
  // from the presence store when there is one (else as peers told this node).
  // A user whose last session here just closed counts as local until the
  // store has erased this node's entry (for those milliseconds a session on
  // another node is not seen), so the store's stale "online" never shows.
  Result<std::vector<PresenceStatus>> presence_of(const std::vector<std::string>& user_ids);
  // The same without a store read: local users as above, the others as
  // `stored` says (what the host read from the presence store off the turn,
  // one per user; empty: as this node knows them).
  std::vector<PresenceStatus> presence_of(const std::vector<std::string>& user_ids,
                                          const std::vector<PresenceStatus>& stored) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace parley
