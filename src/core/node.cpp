#include "parley/node.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "core/peer_codec.hpp"
#include "core/util.hpp"
#include "parley/message_log.hpp"

namespace parley {

namespace {

struct Subscription {
  uint64_t cursor = 0;  // last msg_id this session holds
  bool paused = false;  // pull mode, or waiting for the client to resume
  bool resume_pending = false;
  uint64_t resume_rid = 0;
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
  std::deque<std::pair<uint64_t, MessagePtr>> undrained;
  bool presence_sub = false;
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
};

// A committed message whose group members may need a notification.
struct NotifyCandidate {
  MessagePtr message;
  std::vector<std::string> users;
};

}  // namespace

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

  Status start() {
    if (Status s = validate_id(opt_.node_id, "node_id", opt_.limits); !s) return s;
    if (Status s = stores_.directory.drop_node(opt_.node_id); !s) return s;
    const int64_t now = clock_.now_ms();
    next_head_sync_ = now + static_cast<int64_t>(random_.below(opt_.head_sync_ms + 1));
    next_dir_refresh_ = now + opt_.directory_ttl_ms / 3;
    started_ = true;
    arm_timer();
    return Status::ok();
  }

  // ---- sessions ----------------------------------------------------------

  Status open_session(SessionId id, const std::string& user) {
    if (Status s = validate_id(user, "user_id", opt_.limits); !s) return s;
    if (sessions_.count(id)) return error(Code::kAlreadyExists, fmt::format("session {} is open", id));
    if (opt_.max_sessions_per_user != 0) {
      auto it = user_sessions_.find(user);
      if (it != user_sessions_.end() && it->second.size() >= opt_.max_sessions_per_user) {
        return error(Code::kLimitExceeded,
                     fmt::format("'{}' has {} connections to this node; the limit is {}", user,
                                 it->second.size(), opt_.max_sessions_per_user));
      }
    }
    Session& s = sessions_[id];
    s.id = id;
    s.user = user;
    std::vector<SessionId>& mine = user_sessions_[user];
    mine.push_back(id);
    if (mine.size() == 1) {
      if (Status st = stores_.directory.put(user, opt_.node_id, clock_.now_ms() + opt_.directory_ttl_ms);
          !st) {
        ++stats_.store_errors;
      }
      set_status(user, PresenceStatus::kOnline);
    }
    if (auto it = last_error_.find(user); it != last_error_.end()) {
      queue_event(s, ErrorEv{0, it->second.code(), "your previous connection failed: " + it->second.message(),
                             "", ""});
      last_error_.erase(it);
    }
    return Status::ok();
  }

  void close_session(SessionId id, const Status& reason) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    Session& s = it->second;
    std::vector<std::pair<std::string, EpochCursor>> held;  // what this session was handed
    if (notifier_) {
      for (const auto& [group_id, sub] : s.subs) {
        auto g = groups_.find(group_id);
        held.push_back({group_id, {g == groups_.end() ? 0 : g->second.epoch, sub.cursor}});
      }
    }
    for (auto& [group_id, sub] : s.subs) drop_subscriber(group_id, id);
    std::vector<SessionId>& mine = user_sessions_[s.user];
    mine.erase(std::remove(mine.begin(), mine.end(), id), mine.end());
    const bool last = mine.empty();
    if (last) {
      user_sessions_.erase(s.user);
      send_buckets_.erase(s.user);
      if (Status st = stores_.directory.erase(s.user, opt_.node_id); !st) ++stats_.store_errors;
      set_status(s.user, PresenceStatus::kOffline);
    }
    if (!reason.is_ok()) {
      last_error_[s.user] = reason;
      if (last) notify_undelivered(s, reason);
    }
    if (last) {
      handed_to_closed_.erase(s.user);
    } else {
      for (const auto& [group_id, at] : held) {
        EpochCursor& rec = handed_to_closed_[s.user][group_id];
        if (at.epoch > rec.epoch || (at.epoch == rec.epoch && at.cursor > rec.cursor)) rec = at;
      }
    }
    sessions_.erase(it);
    pump_set_.erase(id);
  }

  void on_client_frame(SessionId id, const void* data, size_t size) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    Result<ClientRequest> req = codec_->decode_request(data, size, opt_.limits);
    if (!req) {
      ++stats_.bad_frames;
      Status st = req.status();
      ErrorEv ev{0, st.code(), st.message(), "", ""};
      codec_->peek_ids(data, size, opt_.limits, &ev.rid, &ev.group_id, &ev.client_msg_id);
      queue_event(it->second, std::move(ev));
      return;
    }
    on_client_request(id, *req);
  }

  void on_client_request(SessionId id, const ClientRequest& request) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    Session& s = it->second;
    std::visit([&](const auto& r) { handle(s, r); }, request);
  }

  void on_session_drained(SessionId id, size_t bytes) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    Session& s = it->second;
    bytes = std::min(bytes, s.unacked);
    s.unacked -= bytes;
    s.drained_total += bytes;
    while (!s.undrained.empty() && s.undrained.front().first <= s.drained_total) s.undrained.pop_front();
    for (auto& [group_id, sub] : s.subs) {
      if (needs_catch_up(group_id, sub)) pump_set_.insert(id);
    }
  }

  // ---- client requests ---------------------------------------------------

  // Membership check shared by every group request.
  Status authorize(const Session& s, const std::string& group_id) { return authorize(s.user, group_id); }
  Status authorize(const std::string& user, const std::string& group_id) {
    if (Status st = validate_id(group_id, "group_id", opt_.limits); !st) return st;
    Result<std::optional<Role>> role = stores_.membership.role_of(group_id, user);
    if (!role) {
      ++stats_.store_errors;
      return role.status();
    }
    if (role->has_value()) return Status::ok();
    Result<bool> exists = stores_.membership.group_exists(group_id);
    if (exists && !*exists) return error(Code::kNotFound, fmt::format("group '{}' does not exist", group_id));
    return error(Code::kPermissionDenied, fmt::format("'{}' is not a member of '{}'", user, group_id));
  }

  // The per-user send rate: a token bucket. 0 if the send may go now, else
  // the milliseconds until it could.
  uint64_t take_send_token(const std::string& user) {
    if (opt_.send_rate_per_user <= 0) return 0;
    const double burst = std::max(1.0, opt_.send_burst_per_user);
    const int64_t now = clock_.now_ms();
    auto [it, inserted] = send_buckets_.try_emplace(user, SendBucket{burst, now});
    SendBucket& b = it->second;
    b.tokens =
        std::min(burst, b.tokens + static_cast<double>(now - b.at_ms) * opt_.send_rate_per_user / 1000.0);
    b.at_ms = now;
    if (b.tokens >= 1.0) {
      b.tokens -= 1.0;
      return 0;
    }
    return static_cast<uint64_t>(std::ceil((1.0 - b.tokens) * 1000.0 / opt_.send_rate_per_user));
  }

  void reply_error(Session& s, uint64_t rid, const Status& st, const std::string& group_id,
                   const std::string& cid = "") {
    queue_event(s, ErrorEv{rid, st.code(), st.message(), group_id, cid});
  }

  void handle(Session& s, const SendReq& r) {
    ++stats_.sends;
    Status st = validate_submission(r.group_id, s.user, r.client_msg_id, r.contents, opt_.limits);
    if (st) st = authorize(s, r.group_id);
    if (!st) {
      ++stats_.send_errors;
      reply_error(s, r.rid, st, r.group_id, r.client_msg_id);
      return;
    }
    if (uint64_t wait_ms = take_send_token(s.user); wait_ms != 0) {
      ++stats_.send_errors;
      ErrorEv ev{r.rid, Code::kLimitExceeded,
                 fmt::format("more than {} sends a second; retry in {} ms", opt_.send_rate_per_user, wait_ms),
                 r.group_id, r.client_msg_id};
      ev.retry_after_ms = wait_ms;
      queue_event(s, ev);
      return;
    }
    const int64_t now = clock_.now_ms();
    PendingSend p{s.id, r.rid, r.client_msg_id, r.group_id};
    if (opt_.mutations.ack_before_commit) {
      queue_event(s, AckEv{r.rid, r.group_id, r.client_msg_id, 0, now, false});
      p.session = 0;  // nobody to answer after the commit
    }
    pending_.push_back(std::move(p));
    pending_requests_.push_back(
        {r.group_id, s.user, opt_.mutations.no_dedup ? std::string() : r.client_msg_id, r.contents, now});
  }

  void handle(Session& s, const ResumeReq& r) {
    if (Status st = authorize(s, r.group_id); !st) return reply_error(s, r.rid, st, r.group_id);
    Result<GroupState*> g = ensure_group(r.group_id);
    if (!g) return reply_error(s, r.rid, g.status(), r.group_id);
    // A client ahead of this node (a newer epoch, or a later message, seen
    // through another node) makes it ask the store first.
    std::optional<GroupHead> stored;
    if (r.epoch > (*g)->epoch || r.after > detector_.known_head(r.group_id)) {
      std::vector<GroupHead> heads;
      if (Status st = stores_.messages.heads({r.group_id}, &heads); !st) {
        ++stats_.store_errors;
        return reply_error(s, r.rid, st, r.group_id);
      }
      stored = heads[0];
      apply_head(*stored);  // may start a new epoch (subscribers are told)
    }
    GroupState& group = **g;  // reset_group keeps the state object
    uint64_t after = r.after;
    if (r.epoch != 0 && group.epoch != 0 && r.epoch != group.epoch) {
      if (r.epoch > group.epoch) {
        return reply_error(
            s, r.rid,
            error(Code::kInvalidArgument,
                  fmt::format("'{}' has no epoch {} (it is in epoch {})", r.group_id, r.epoch, group.epoch)),
            r.group_id);
      }
      queue_event(s, EpochEv{r.group_id, group.epoch, detector_.delivered(r.group_id)});
      after = 0;  // the client's copy is of another epoch: it starts over
    } else if (stored && after > stored->head) {
      return reply_error(s, r.rid,
                         error(Code::kInvalidArgument, fmt::format("after={} is beyond the head {} of '{}'",
                                                                   after, stored->head, r.group_id)),
                         r.group_id);
    }
    auto [it, inserted] = s.subs.try_emplace(r.group_id);
    if (inserted) group.subscribers.push_back({&s, &it->second});
    Subscription& sub = it->second;
    // Within one session nothing sent is lost, so a second resume (after a
    // mode switch or an epoch change, or racing a pull answer) never sends
    // anything twice. (An existing subscription's cursor is always in the
    // group's current epoch: reset_group rewinds it.)
    sub.cursor = inserted ? after : std::max(after, sub.cursor);
    sub.paused = policy_.mode(r.group_id) == DeliveryMode::kPull;
    sub.resume_pending = true;
    sub.resume_rid = r.rid;
    if (sub.paused) {
      finish_resume(s, r.group_id, sub);
      return;
    }
    pump_set_.insert(s.id);
  }

  void handle(Session& s, const UnsubscribeReq& r) {
    if (s.subs.erase(r.group_id) == 0) {
      return reply_error(s, r.rid, error(Code::kNotFound, "not subscribed to " + r.group_id), r.group_id);
    }
    drop_subscriber(r.group_id, s.id);
  }

  void handle(Session& s, const PullReq& r) {
    Result<PullResultEv> ev = pull(s.user, r);
    if (!ev) return reply_error(s, r.rid, ev.status(), r.group_id);
    if (auto sub = s.subs.find(r.group_id); sub != s.subs.end() && !ev->messages.empty()) {
      sub->second.cursor = std::max(sub->second.cursor, ev->messages.back()->msg_id);
    }
    queue_event(s, *ev);
  }

  // A pull by `user`, for a session or the host's HTTP API: up to r.limit
  // messages after r.after, from the tail cache where it covers them.
  Result<PullResultEv> pull(const std::string& user, const PullReq& r) {
    ++stats_.pulls;
    PARLEY_TRY(authorize(user, r.group_id));
    auto git = groups_.find(r.group_id);
    uint64_t head = 0;
    uint64_t epoch = 0;
    if (git != groups_.end()) {
      head = detector_.delivered(r.group_id);
      epoch = git->second.epoch;
    } else {
      std::vector<GroupHead> heads;
      if (Status st = stores_.messages.heads({r.group_id}, &heads); !st) {
        ++stats_.store_errors;
        return st;
      }
      head = heads[0].head;
      epoch = heads[0].epoch;
    }
    if (r.epoch != 0 && epoch != 0 && r.epoch != epoch) {
      if (r.epoch > epoch && git != groups_.end()) resync_.insert(r.group_id);  // we are behind
      return error(Code::kEpochMismatch,
                   fmt::format("'{}' is in epoch {}, not {}: resume from 0", r.group_id, epoch, r.epoch));
    }
    std::vector<MessageLog::Entry> entries;
    const size_t limit = std::min<size_t>(r.limit, opt_.limits.max_read_limit);
    if (r.after < head) {
      if (Status st = log_.read(r.group_id, r.after, std::min<uint64_t>(limit, head - r.after), &entries);
          !st) {
        ++stats_.store_errors;
        return st;
      }
    }
    PullResultEv ev{r.rid, r.group_id, {}, head, epoch};
    ev.messages.reserve(entries.size());
    for (MessageLog::Entry& e : entries) {
      if (e.message->msg_id > head) break;
      if (git != groups_.end() && !in_epoch(git->second, r.group_id, e.message->epoch)) {
        return error(Code::kEpochMismatch, "the group's history was reset; resume");
      }
      ev.messages.push_back(std::move(e.message));
    }
    return ev;
  }

  void handle(Session& s, const TypingReq& r) {
    if (Status st = authorize(s, r.group_id); !st) return reply_error(s, r.rid, st, r.group_id);
    int64_t expires = 0;
    if (!presence_.typing(s.user, r.group_id, clock_.now_ms(), &expires)) return;
    PresenceStatus status = presence_.status(s.user, clock_.now_ms());
    broadcast_presence(PresenceEv{s.user, r.group_id, status, true, expires});
  }

  void handle(Session& s, const PresenceReq& r) {
    if (r.status == PresenceStatus::kOffline) {
      return reply_error(s, r.rid, error(Code::kInvalidArgument, "status must be online or away"), "");
    }
    s.presence_sub = r.subscribe;
    set_status(s.user, r.status);
  }

  // A local user's status changed: co-members are told, and the presence
  // store (if any) records it for other nodes. Going offline needs no store
  // write: the directory entry's erase ends it.
  void set_status(const std::string& user, PresenceStatus status) {
    if (!presence_.set_local(user, status)) return;
    broadcast_status(user, status);
    if (stores_.presence != nullptr && status != PresenceStatus::kOffline) {
      if (Status st = stores_.presence->set_presence(user, opt_.node_id, status); !st) ++stats_.store_errors;
    }
  }

  // ---- groups --------------------------------------------------------------

  // Starts following a group (its head becomes the delivered point).
  Result<GroupState*> ensure_group(const std::string& group_id) {
    auto it = groups_.find(group_id);
    if (it != groups_.end()) return &it->second;
    std::vector<GroupHead> heads;
    if (Status st = stores_.messages.heads({group_id}, &heads); !st) {
      ++stats_.store_errors;
      return st;
    }
    GroupState& g = groups_[group_id];
    g.epoch = heads[0].epoch;
    detector_.track(group_id, heads[0].head);
    announce_interest(group_id);
    return &g;
  }

  // Peers that cached this group's route before this node had a member
  // session forget it, so they forward to this node from now on rather than
  // when their cache expires.
  void announce_interest(const std::string& group_id) {
    routes_.erase(group_id);
    const Route* route = route_for(group_id);
    if (!route || route->nodes.empty()) return;
    Frame item = std::make_shared<const std::string>(detail::encode_interest_item(group_id));
    for (const std::string& n : route->nodes) forwarder_.enqueue(n, item, clock_.now_ms());
  }

  void drop_subscriber(const std::string& group_id, SessionId id) {
    auto it = groups_.find(group_id);
    if (it == groups_.end()) return;
    std::vector<Subscriber>& subs = it->second.subscribers;
    subs.erase(
        std::remove_if(subs.begin(), subs.end(), [id](const Subscriber& x) { return x.session->id == id; }),
        subs.end());
    if (!subs.empty()) return;
    groups_.erase(it);
    detector_.untrack(group_id);
    log_.forget(group_id);
    policy_.forget(group_id);
  }

  void member_removed(const std::string& group_id, const std::string& user) {
    routes_.erase(group_id);
    auto it = user_sessions_.find(user);
    if (it == user_sessions_.end()) return;
    for (SessionId id : it->second) {
      Session& s = sessions_.at(id);
      if (s.subs.erase(group_id)) drop_subscriber(group_id, id);
    }
  }

  // Members, peer nodes and offline members of a group, cached for route_ttl_ms.
  const Route* route_for(const std::string& group_id) {
    const int64_t now = clock_.now_ms();
    auto it = routes_.find(group_id);
    if (it != routes_.end() && it->second.expires_at > now) return &it->second;
    Result<std::vector<Member>> members = stores_.membership.members(group_id);
    if (!members) {
      ++stats_.store_errors;
      return it == routes_.end() ? nullptr : &it->second;
    }
    Route r;
    r.members.reserve(members->size());
    for (Member& m : *members) r.members.push_back(std::move(m.user_id));
    std::vector<std::vector<std::string>> nodes;
    if (Status st = stores_.directory.nodes_of(r.members, now, &nodes); !st) {
      ++stats_.store_errors;
      return it == routes_.end() ? nullptr : &it->second;
    }
    std::set<std::string> peers;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].empty()) r.offline_members.push_back(r.members[i]);
      for (std::string& n : nodes[i]) {
        if (n != opt_.node_id) peers.insert(std::move(n));
      }
    }
    r.nodes.assign(peers.begin(), peers.end());
    r.expires_at = now + opt_.route_ttl_ms;
    return &(routes_[group_id] = std::move(r));
  }

  // ---- the turn ------------------------------------------------------------

  void flush() {
    commit_pending();
    run_catch_ups();
    pump_sessions();
    run_resyncs();
    send_hints();
    cut_off_behind();
    write_outboxes();
    arm_timer();
  }

  // The turn's sends leave as one append job: to the executor, or appended
  // here and completed at once.
  void commit_pending() {
    if (pending_.empty()) return;
    const uint64_t id = next_job_++;
    std::vector<PendingSend>& batch = in_flight_[id];
    batch.swap(pending_);
    AppendJob job{id, {}};
    job.requests.swap(pending_requests_);
    ++stats_.commits;
    if (stores_.executor != nullptr) {
      if (opt_.mutations.ack_before_completion) {
        for (PendingSend& p : batch) {
          if (Session* s = session(p.session)) {
            queue_event(*s, AckEv{p.rid, p.group_id, p.client_msg_id, 0, clock_.now_ms(), false});
          }
          p.session = 0;
        }
      }
      stores_.executor->append(std::move(job));
      return;
    }
    std::vector<AppendOutcome> outcomes;
    Status st = stores_.messages.append(job.requests, &outcomes);
    complete_append(id, st, std::move(outcomes));
  }

  void complete_append(uint64_t id, const Status& st, std::vector<AppendOutcome> outcomes) {
    auto it = in_flight_.find(id);
    if (it == in_flight_.end()) return;
    std::vector<PendingSend> batch = std::move(it->second);
    in_flight_.erase(it);
    if (st && outcomes.size() != batch.size()) {
      return complete_append_failed(
          batch, error(Code::kInternal, fmt::format("the store answered {} outcomes for {} appends",
                                                    outcomes.size(), batch.size())));
    }
    if (!st) return complete_append_failed(batch, st);
    std::vector<NotifyCandidate> candidates;
    for (size_t i = 0; i < batch.size(); ++i) {
      AppendOutcome& o = outcomes[i];
      if (Session* s = session(batch[i].session)) {
        ++stats_.acks;
        queue_event(*s, AckEv{batch[i].rid, o.message.group_id, batch[i].client_msg_id, o.message.msg_id,
                              o.message.timestamp_ms, o.duplicate, o.message.epoch});
      }
      if (o.duplicate) {
        ++stats_.duplicate_sends;
        continue;
      }
      auto m = std::make_shared<const Message>(std::move(o.message));
      on_committed(m, &candidates);
    }
    notify_offline(candidates);
  }

  void complete_append_failed(const std::vector<PendingSend>& batch, const Status& st) {
    ++stats_.store_errors;
    for (const PendingSend& p : batch) {
      if (Session* s = session(p.session)) {
        ++stats_.send_errors;
        reply_error(*s, p.rid, st, p.group_id, p.client_msg_id);
      }
    }
  }

  void on_committed(const MessagePtr& m, std::vector<NotifyCandidate>* candidates) {
    const Route* route = route_for(m->group_id);
    if (route && !route->nodes.empty()) {
      Frame item = std::make_shared<const std::string>(detail::encode_message_item(*m));
      const int64_t now = clock_.now_ms();
      for (const std::string& n : route->nodes) forwarder_.enqueue(n, item, now);
    }
    if (notifier_ && route) {
      NotifyCandidate c{m, {}};
      for (const std::string& u : route->offline_members) {
        if (u != m->user_id) c.users.push_back(u);
      }
      if (!c.users.empty()) candidates->push_back(std::move(c));
    }
    accept(m);
  }

  // A message reached this node (committed here or forwarded by a peer).
  void accept(const MessagePtr& m) {
    auto git = groups_.find(m->group_id);
    if (git == groups_.end() || !in_epoch(git->second, m->group_id, m->epoch)) return;
    if (opt_.mutations.no_gap_detection) {
      deliver(m);
      return;
    }
    std::vector<MessagePtr> ready;
    GapDetector::Offer offer = detector_.offer(m, clock_.now_ms(), &ready);
    if (offer == GapDetector::Offer::kOverflow) run_catch_ups();
    for (const MessagePtr& r : ready) deliver(r);
  }

  // Whether a message of `epoch` belongs to the history this node follows for
  // the group. A newer epoch means the history was reset: the group is
  // resynced at the end of the turn. An older one is a stale leftover.
  bool in_epoch(GroupState& g, const std::string& group_id, uint64_t epoch) {
    if (epoch == 0 || epoch == g.epoch || opt_.mutations.ignore_epochs) return true;
    if (g.epoch == 0) {  // the group had no history when we started following it
      g.epoch = epoch;
      return true;
    }
    if (epoch > g.epoch) resync_.insert(group_id);
    return false;
  }

  // Groups whose epoch changed under us: learn the new one from the store and
  // make every subscriber start over (EpochEv).
  void run_resyncs() {
    if (resync_.empty()) return;
    std::vector<std::string> ids(resync_.begin(), resync_.end());
    resync_.clear();
    if (!resync_now(ids)) resync_.insert(ids.begin(), ids.end());  // next turn
  }

  Status resync_now(const std::vector<std::string>& ids) {
    std::vector<GroupHead> heads;
    if (Status st = stores_.messages.heads(ids, &heads); !st) {
      ++stats_.store_errors;
      return st;
    }
    for (const GroupHead& h : heads) apply_head(h);
    return Status::ok();
  }

  // What the store says of a followed group: a head to catch up to, or a new epoch.
  void apply_head(const GroupHead& h) {
    auto it = groups_.find(h.group_id);
    if (it == groups_.end()) return;
    if (it->second.epoch != 0 && h.epoch != it->second.epoch) return reset_group(h);
    it->second.epoch = h.epoch;  // 0 until the first append since we started following it
    detector_.note_head(h.group_id, h.head, clock_.now_ms());
  }

  // Reads missing ranges from the store for groups whose gaps timed out.
  void run_catch_ups() {
    std::vector<CatchUpRequest> due;
    detector_.due(clock_.now_ms(), &due);
    for (const CatchUpRequest& c : due) catch_up(c);
  }

  void catch_up(const CatchUpRequest& c) {
    ++stats_.catch_ups;
    uint64_t after = c.after;
    while (after < c.until && detector_.tracking(c.group_id)) {
      std::vector<Message> got;
      const size_t want = std::min<uint64_t>(opt_.catch_up_page, c.until - after);
      if (Status st = stores_.messages.read(c.group_id, after, want, &got); !st) {
        if (st.code() == Code::kTrimmed) {
          // Retention removed what is missing: nobody can have it any more.
          const uint64_t trimmed = trimmed_before(c.group_id);
          if (trimmed > after) {
            skip_trimmed(c.group_id, trimmed);
            after = trimmed;
            continue;
          }
        }
        ++stats_.store_errors;
        return;  // asked again after retry_ms
      }
      if (got.empty()) return;
      std::vector<MessagePtr> ready;
      GroupState& g = groups_.at(c.group_id);
      for (Message& msg : got) {
        if (!in_epoch(g, c.group_id, msg.epoch)) return;
        after = msg.msg_id;
        ++stats_.catch_up_messages;
        detector_.offer(std::make_shared<const Message>(std::move(msg)), clock_.now_ms(), &ready);
      }
      for (const MessagePtr& r : ready) deliver(r);
    }
  }

  // How far the store trimmed a group's history (0 if it cannot tell).
  uint64_t trimmed_before(const std::string& group_id) {
    std::vector<GroupHead> heads;
    if (Status st = stores_.messages.heads({group_id}, &heads); !st) {
      ++stats_.store_errors;
      return 0;
    }
    return heads[0].trimmed;
  }

  // Moves a followed group past ids the store no longer has; its sessions
  // are told when their pump meets the hole.
  void skip_trimmed(const std::string& group_id, uint64_t trimmed) {
    std::vector<MessagePtr> ready;
    detector_.skip_to(group_id, trimmed, &ready);
    for (const MessagePtr& r : ready) deliver(r);
    auto g = groups_.find(group_id);
    if (g == groups_.end()) return;
    for (const Subscriber& x : g->second.subscribers) pump_set_.insert(x.session->id);
  }

  // Fans one in-order message out to this node's sessions.
  void deliver(const MessagePtr& m) {
    auto git = groups_.find(m->group_id);
    if (git == groups_.end()) return;
    GroupState& g = git->second;
    const int64_t now = clock_.now_ms();
    const Route* route = route_for(m->group_id);
    if (auto change = policy_.observe(m->group_id, route ? route->members.size() : 0, now)) {
      switch_mode(m->group_id, g, *change);
    }
    MessageLog::Entry entry{m, nullptr};
    if (policy_.mode(m->group_id) == DeliveryMode::kPull) {
      g.hint_pending = true;
    } else {
      fan_out(g, entry);
    }
    log_.append(std::move(entry));
  }

  void fan_out(GroupState& g, MessageLog::Entry& entry) {
    const Message& m = *entry.message;
    for (const Subscriber& x : g.subscribers) {
      Session& s = *x.session;
      Subscription& sub = *x.sub;
      if (sub.paused || s.behind) continue;
      if (opt_.mutations.no_gap_detection) {
        if (m.msg_id <= sub.cursor && !sub.resume_pending) continue;
      } else if (sub.cursor + 1 != m.msg_id || sub.resume_pending) {
        continue;  // already has it, or is catching up (the pump fills it)
      }
      if (!entry.frame) entry.frame = encode(MessageEv{entry.message});
      queue_message(s, entry);
      sub.cursor = std::max(sub.cursor, m.msg_id);
    }
  }

  void switch_mode(const std::string& group_id, GroupState& g, DeliveryMode mode) {
    ++stats_.mode_switches;
    Frame f = encode(ModeEv{group_id, mode, detector_.delivered(group_id)});
    for (const Subscriber& x : g.subscribers) {
      Session& s = *x.session;
      Subscription& sub = *x.sub;
      // Either way the client drives the next step: it pulls, or it resumes.
      sub.paused = true;
      sub.resume_pending = false;
      queue_frame(s, f);
    }
  }

  // Sends a PullHint to the subscribers of each pull-mode group that moved.
  void send_hints() {
    const int64_t now = clock_.now_ms();
    for (auto& [group_id, g] : groups_) {
      if (!g.hint_pending || g.next_hint_at > now) continue;
      g.hint_pending = false;
      g.next_hint_at = now + opt_.pull_hint_ms;
      ++stats_.pull_hints;
      Frame f = encode(PullHintEv{group_id, detector_.delivered(group_id)});
      for (const Subscriber& x : g.subscribers) queue_frame(*x.session, f);
    }
  }

  bool needs_catch_up(const std::string& group_id, const Subscription& sub) const {
    return !sub.paused && (sub.resume_pending || sub.cursor < detector_.delivered(group_id));
  }

  // Feeds sessions that are behind their groups from the log, a page at a
  // time, while their send queues have room.
  void pump_sessions() {
    if (pump_set_.empty()) return;
    std::vector<SessionId> ids(pump_set_.begin(), pump_set_.end());
    pump_set_.clear();
    for (SessionId id : ids) {
      if (Session* s = session(id)) pump(*s);
    }
  }

  void pump(Session& s) {
    for (auto& [group_id, sub] : s.subs) {
      while (needs_catch_up(group_id, sub)) {
        const uint64_t head = detector_.delivered(group_id);
        if (sub.cursor >= head) {
          finish_resume(s, group_id, sub);
          break;
        }
        if (s.pending_bytes() >= opt_.session_queue_bytes / 2) return;  // drained later
        std::vector<MessageLog::Entry> page;
        const size_t want = std::min<uint64_t>(opt_.catch_up_page, head - sub.cursor);
        Status st = log_.read(group_id, sub.cursor, want, &page);
        if (st.code() == Code::kTrimmed) {
          if (const uint64_t trimmed = trimmed_before(group_id); trimmed > sub.cursor) {
            // Tell the client where its history starts again, then go on.
            reply_error(s, sub.resume_pending ? sub.resume_rid : 0,
                        error(Code::kTrimmed, fmt::format("history of group '{}' is trimmed before id {}; "
                                                          "delivery goes on from there",
                                                          group_id, trimmed + 1)),
                        group_id);
            sub.cursor = trimmed;
            continue;
          }
        }
        if (!st || page.empty()) {
          if (!st) ++stats_.store_errors;
          retry_pump_at_ = clock_.now_ms() + opt_.gap.retry_ms;
          pump_set_.insert(s.id);
          return;
        }
        GroupState& g = groups_.at(group_id);
        for (MessageLog::Entry& e : page) {
          if (!in_epoch(g, group_id, e.message->epoch)) return;
          if (e.message->msg_id != sub.cursor + 1) break;
          if (!e.frame) e.frame = encode(MessageEv{e.message});
          queue_message(s, e);
          sub.cursor = e.message->msg_id;
          // Large messages: stop mid-page rather than overflow the queue;
          // the pump goes on when the session drains.
          if (s.pending_bytes() >= opt_.session_queue_bytes / 2) return;
        }
      }
    }
  }

  void finish_resume(Session& s, const std::string& group_id, Subscription& sub) {
    if (!sub.resume_pending) return;
    sub.resume_pending = false;
    auto g = groups_.find(group_id);
    queue_event(s, ResumedEv{sub.resume_rid, group_id, detector_.delivered(group_id),
                             g == groups_.end() ? 0 : g->second.epoch, policy_.mode(group_id)});
  }

  // ---- peers ---------------------------------------------------------------

  Status on_peer_batch(const void* data, size_t size) {
    Result<detail::PeerBatch> batch = detail::decode_batch(data, size, opt_.limits);
    if (!batch) return batch.status();
    ++stats_.peer_batches_in;
    stats_.peer_messages_in += batch->messages.size();
    for (const MessagePtr& m : batch->messages) accept(m);
    // A peer's user came or went, or a peer started following a group: the
    // group's cached route is out of date.
    for (const std::string& g : batch->interest) routes_.erase(g);
    for (const PresenceEv& p : batch->presence) {
      if (!p.typing) routes_.erase(p.group_id);
      presence_.observe_remote(p, clock_.now_ms());
      deliver_presence_locally(p);
    }
    return Status::ok();
  }

  // ---- presence ------------------------------------------------------------

  void broadcast_status(const std::string& user, PresenceStatus status) {
    Result<std::vector<std::string>> groups = stores_.membership.groups_of(user);
    if (!groups) {
      ++stats_.store_errors;
      return;
    }
    for (const std::string& g : *groups) {
      routes_.erase(g);  // a member's node set changed
      broadcast_presence(PresenceEv{user, g, status, false, 0});
    }
  }

  void broadcast_presence(const PresenceEv& ev) {
    deliver_presence_locally(ev);
    const Route* route = route_for(ev.group_id);
    if (!route || route->nodes.empty()) return;
    Frame item = std::make_shared<const std::string>(detail::encode_presence_item(ev));
    for (const std::string& n : route->nodes) forwarder_.enqueue(n, item, clock_.now_ms());
  }

  void deliver_presence_locally(const PresenceEv& ev) {
    auto it = groups_.find(ev.group_id);
    if (it == groups_.end()) return;
    Frame f;
    for (const Subscriber& x : it->second.subscribers) {
      Session& s = *x.session;
      if (!s.presence_sub || s.user == ev.user_id) continue;
      if (!f) f = encode(ev);
      queue_frame(s, f);
    }
  }

  // ---- notifications -------------------------------------------------------

  // The first bytes of `s`, at most `max`, not cutting a UTF-8 sequence.
  static std::string utf8_prefix(const std::string& s, size_t max) {
    if (s.size() <= max) return s;
    size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // s[n] continues a character
    return s.substr(0, n);
  }

  Notification notification_for(const std::string& user, const Message& m, std::string reason) {
    return Notification{user,
                        m.group_id,
                        m.epoch,
                        m.msg_id,
                        m.user_id,
                        utf8_prefix(m.contents, opt_.notify_preview_bytes),
                        std::move(reason)};
  }

  // Notifies members that were offline when their route was computed and
  // still have no session anywhere (one directory read for the whole turn).
  void notify_offline(const std::vector<NotifyCandidate>& candidates) {
    if (candidates.empty()) return;
    std::vector<std::string> users;
    for (const NotifyCandidate& c : candidates) users.insert(users.end(), c.users.begin(), c.users.end());
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());
    std::vector<std::vector<std::string>> nodes;
    if (Status st = stores_.directory.nodes_of(users, clock_.now_ms(), &nodes); !st) {
      ++stats_.store_errors;
      return;
    }
    std::unordered_set<std::string> offline;
    for (size_t i = 0; i < users.size(); ++i) {
      if (nodes[i].empty()) offline.insert(users[i]);
    }
    for (const NotifyCandidate& c : candidates) {
      for (const std::string& u : c.users) {
        if (!offline.count(u)) continue;
        ++stats_.notifications;
        notifier_->notify(notification_for(u, *c.message, "offline"));
      }
    }
  }

  // A failed session's queued messages go to the notifier, unless the user
  // is still connected elsewhere.
  void notify_undelivered(const Session& s, const Status& reason) {
    if (!notifier_ || s.undrained.empty()) return;
    std::vector<std::vector<std::string>> nodes;
    if (Status st = stores_.directory.nodes_of({s.user}, clock_.now_ms(), &nodes); !st) {
      ++stats_.store_errors;
      return;
    }
    if (!nodes[0].empty()) return;
    // Sessions of the same user that closed before this one were handed some
    // of these messages: those count as delivered.
    auto handed = handed_to_closed_.find(s.user);
    for (const auto& [end, m] : s.undrained) {
      if (handed != handed_to_closed_.end()) {
        auto rec = handed->second.find(m->group_id);
        if (rec != handed->second.end() && rec->second.epoch == m->epoch && rec->second.cursor >= m->msg_id) {
          continue;
        }
      }
      ++stats_.notifications;
      notifier_->notify(notification_for(s.user, *m, reason.to_string()));
    }
  }

  // ---- output ----------------------------------------------------------------

  Frame encode(const ServerEvent& ev) {
    return std::make_shared<const std::string>(codec_->encode_event(ev));
  }

  // Every frame to a session goes through here, so this is where the
  // session's send queue is bounded.
  void queue_frame(Session& s, const Frame& f) {
    if (s.behind) return;
    s.outbox.push_back(f);
    s.outbox_bytes += f->size();
    s.queued_total += f->size();
    if (!s.dirty) {
      s.dirty = true;
      dirty_.push_back(s.id);
    }
    // Over the bound with bytes still unwritten from earlier turns. A turn's
    // own burst into a session that has written everything is handed over
    // whole: the host has had no chance to write any of it yet (with a store
    // executor one completion can carry many turns' sends).
    if (s.unacked > 0 && s.pending_bytes() > opt_.session_queue_bytes) {
      s.behind = true;
      behind_.push_back(s.id);
    }
  }

  void queue_message(Session& s, const MessageLog::Entry& e) {
    queue_frame(s, e.frame);
    ++stats_.deliveries;
    if (notifier_) s.undrained.emplace_back(s.queued_total, e.message);
  }

  void queue_event(Session& s, const ServerEvent& ev) { queue_frame(s, encode(ev)); }

  // Cuts off the sessions that went over their bound this turn: what they
  // have not been handed is dropped (and notified), they are told, and closed.
  void cut_off_behind() {
    std::vector<SessionId> ids;
    ids.swap(behind_);
    for (SessionId id : ids) fell_behind(id);
  }

  void fell_behind(SessionId id) {
    Session* s = session(id);
    if (!s) return;
    ++stats_.fell_behind;
    const size_t queued = s->pending_bytes();
    s->outbox.clear();
    s->outbox_bytes = 0;
    host_.send_to_session(id, {encode(FellBehindEv{queued})});
    Status reason =
        error(Code::kBackpressure, fmt::format("session fell behind with {} bytes unwritten", queued));
    host_.close_session(id, reason);
    close_session(id, reason);
  }

  void write_outbox(Session& s) {
    if (s.outbox.empty()) return;
    host_.send_to_session(s.id, s.outbox);
    s.unacked += s.outbox_bytes;
    s.outbox_bytes = 0;
    s.outbox.clear();
  }

  void write_outboxes() {
    for (SessionId id : dirty_) {
      if (Session* s = session(id)) {
        s->dirty = false;
        write_outbox(*s);
      }
    }
    dirty_.clear();
  }

  Session* session(SessionId id) {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : &it->second;
  }

  // ---- time ----------------------------------------------------------------

  void on_timer() {
    const int64_t now = clock_.now_ms();
    armed_at_ = INT64_MAX;
    forwarder_.poll(now);
    if (now >= next_head_sync_) head_sync(now);
    if (now >= next_dir_refresh_) {
      next_dir_refresh_ = now + opt_.directory_ttl_ms / 3;
      if (Status st = stores_.directory.refresh_node(opt_.node_id, now + opt_.directory_ttl_ms); !st) {
        ++stats_.store_errors;
      }
      if (Status st = stores_.directory.prune(now); !st) ++stats_.store_errors;
      prune_routes(now);
      presence_.expire(now);
    }
    if (retry_pump_at_ != 0 && retry_pump_at_ <= now) retry_pump_at_ = 0;
    flush();
  }

  // Forgets cached routes that expired (groups nobody here sends to any more).
  void prune_routes(int64_t now) {
    for (auto it = routes_.begin(); it != routes_.end();) {
      it = it->second.expires_at <= now ? routes_.erase(it) : std::next(it);
    }
  }

  // Learns the heads of followed groups from the store: a lost last message
  // becomes a gap, a new epoch resets the group.
  void head_sync(int64_t now) {
    const int64_t jitter = static_cast<int64_t>(random_.below(opt_.head_sync_ms / 10 + 1));
    next_head_sync_ = now + opt_.head_sync_ms - opt_.head_sync_ms / 20 + jitter;
    for (auto& [group_id, g] : groups_) {
      const Route* route = route_for(group_id);
      if (auto change = policy_.evaluate(group_id, route ? route->members.size() : 0, now)) {
        switch_mode(group_id, g, *change);
      }
    }
    if (opt_.mutations.no_head_sync || groups_.empty()) return;
    ++stats_.head_syncs;
    std::vector<std::string> ids;
    ids.reserve(groups_.size());
    for (const auto& [group_id, g] : groups_) ids.push_back(group_id);
    std::vector<GroupHead> heads;
    if (Status st = stores_.messages.heads(ids, &heads); !st) {
      ++stats_.store_errors;
      return;
    }
    for (const GroupHead& h : heads) apply_head(h);
  }

  // The store says the group's history was replaced: every subscriber must resync.
  // Subscriptions stay, at cursor 0 of the new epoch and paused until the
  // client resumes, so what a session pulls meanwhile is not pushed again.
  void reset_group(const GroupHead& h) {
    GroupState& g = groups_.at(h.group_id);
    g.epoch = h.epoch;
    g.hint_pending = false;
    detector_.untrack(h.group_id);
    detector_.track(h.group_id, h.head);
    log_.forget(h.group_id);
    policy_.forget(h.group_id);
    Frame f = encode(EpochEv{h.group_id, h.epoch, h.head});
    for (const Subscriber& x : g.subscribers) {
      x.sub->cursor = 0;
      x.sub->paused = true;
      x.sub->resume_pending = false;
      queue_frame(*x.session, f);
    }
  }

  void arm_timer() {
    if (!started_) return;
    int64_t t =
        std::min({detector_.next_deadline(), forwarder_.next_deadline(), next_head_sync_, next_dir_refresh_});
    if (retry_pump_at_ != 0) t = std::min(t, retry_pump_at_);
    for (const auto& [group_id, g] : groups_) {
      if (g.hint_pending) t = std::min(t, g.next_hint_at);
    }
    if (t == armed_at_) return;
    armed_at_ = t;
    host_.set_timer(t);
  }

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
  struct SendBucket {
    double tokens;
    int64_t at_ms;
  };
  std::unordered_map<std::string, SendBucket> send_buckets_;  // users with a session here
  std::unordered_map<std::string, GroupState> groups_;
  std::unordered_map<std::string, Route> routes_;
  std::unordered_map<std::string, Status> last_error_;
  // user -> group -> the furthest a closed session of that user (while others
  // stay open here) was handed; see notify_undelivered.
  std::unordered_map<std::string, std::unordered_map<std::string, EpochCursor>> handed_to_closed_;
  std::vector<PendingSend> pending_;
  std::vector<AppendRequest> pending_requests_;  // the next group commit
  std::map<uint64_t, std::vector<PendingSend>> in_flight_;  // append jobs out with the executor
  uint64_t next_job_ = 1;
  std::set<SessionId> pump_set_;
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

Node::Node(NodeOptions options, NodeStores stores, NodeHost& host, const Clock& clock, Notifier* notifier,
           std::shared_ptr<const ClientCodec> codec)
    : impl_(std::make_unique<Impl>(std::move(options), stores, host, clock, notifier, std::move(codec))) {}
Node::~Node() = default;

Status Node::start() {
  return impl_->start();
}
Status Node::open_session(SessionId session, const std::string& user_id) {
  return impl_->open_session(session, user_id);
}
void Node::close_session(SessionId session, const Status& reason) {
  impl_->close_session(session, reason);
}
void Node::on_client_frame(SessionId session, const void* data, size_t size) {
  impl_->on_client_frame(session, data, size);
}
void Node::on_client_request(SessionId session, const ClientRequest& request) {
  impl_->on_client_request(session, request);
}
void Node::on_session_drained(SessionId session, size_t bytes) {
  impl_->on_session_drained(session, bytes);
}
Status Node::on_peer_batch(const void* data, size_t size) {
  return impl_->on_peer_batch(data, size);
}
void Node::on_peer_result(const std::string& node_id, uint64_t call_id, bool ok) {
  impl_->forwarder_.on_result(node_id, call_id, ok, impl_->clock_.now_ms());
}
Status Node::authorize(const std::string& user_id, const std::string& group_id) {
  return impl_->authorize(user_id, group_id);
}

Result<PullResultEv> Node::pull(const std::string& user_id, const PullReq& request) {
  return impl_->pull(user_id, request);
}

void Node::member_removed(const std::string& group_id, const std::string& user_id) {
  impl_->member_removed(group_id, user_id);
}
void Node::on_append_done(uint64_t job, const Status& status, std::vector<AppendOutcome> outcomes) {
  impl_->complete_append(job, status, std::move(outcomes));
}
size_t Node::appends_in_flight() const {
  return impl_->in_flight_.size();
}
void Node::on_timer() {
  impl_->on_timer();
}
void Node::flush() {
  impl_->flush();
}
const NodeStats& Node::stats() const {
  return impl_->stats_;
}
const BatchingForwarder::Stats& Node::forwarder_stats() const {
  return impl_->forwarder_.stats();
}
size_t Node::peer_queued_items(const std::string& node_id) const {
  return impl_->forwarder_.queued_items(node_id);
}
const std::string& Node::id() const {
  return impl_->opt_.node_id;
}
DeliveryMode Node::mode(const std::string& group_id) const {
  return impl_->policy_.mode(group_id);
}
size_t Node::session_count() const {
  return impl_->sessions_.size();
}
Result<std::vector<PresenceStatus>> Node::presence_of(const std::vector<std::string>& user_ids) {
  std::vector<PresenceStatus> out(user_ids.size());
  std::vector<std::string> ask;  // not connected here: the presence store knows
  std::vector<size_t> at;
  for (size_t i = 0; i < user_ids.size(); ++i) {
    const bool local = impl_->user_sessions_.count(user_ids[i]) != 0;
    out[i] = impl_->presence_.status(user_ids[i], impl_->clock_.now_ms());
    if (!local && impl_->stores_.presence != nullptr) {
      ask.push_back(user_ids[i]);
      at.push_back(i);
    }
  }
  if (ask.empty()) return out;
  std::vector<PresenceStatus> stored;
  if (Status st = impl_->stores_.presence->presence(ask, impl_->clock_.now_ms(), &stored); !st) {
    ++impl_->stats_.store_errors;
    return st;
  }
  for (size_t k = 0; k < at.size(); ++k) out[at[k]] = stored[k];
  return out;
}

PresenceStatus Node::presence_of(const std::string& user_id) const {
  return impl_->presence_.status(user_id, impl_->clock_.now_ms());
}

}  // namespace parley
