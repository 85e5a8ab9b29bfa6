// Node::Impl: Sessions, client requests and per-user limits.
#include "core/node_impl.hpp"

namespace parley {

Status Node::Impl::start() {
  if (Status s = validate_id(opt_.node_id, "node_id", opt_.limits); !s) return s;
  if (Status s = stores_.directory.drop_node(opt_.node_id); !s) return s;
  const int64_t now = clock_.now_ms();
  next_head_sync_ = now + static_cast<int64_t>(random_.below(opt_.head_sync_ms + 1));
  next_dir_refresh_ = now + opt_.directory_ttl_ms / 3;
  started_ = true;
  arm_timer();
  return Status::ok();
}

Status Node::Impl::open_session(SessionId id, const std::string& user) {
  if (Status s = validate_id(user, "user_id", opt_.limits); !s) return s;
  if (id == 0) return error(Code::kInvalidArgument, "session id 0 is reserved (no session)");
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
    if (stores_.executor == nullptr) {
      write(DirectoryPutOp{user, opt_.node_id, clock_.now_ms() + opt_.directory_ttl_ms});
    } else {
      // Its own job, at once; the user's sessions wait for it (see ungate).
      ++putting_[user];
      submit({DirectoryPutOp{user, opt_.node_id, clock_.now_ms() + opt_.directory_ttl_ms}},
             [this, user](std::vector<StoreOpResult>& r) {
               if (!r[0].status) ++stats_.store_errors;
               auto it = putting_.find(user);
               if (it != putting_.end() && --it->second == 0) {  // the user's last put (a reconnect may make two)
                 putting_.erase(it);
                 ungate(user);
               }
             });
    }
    set_status(user, PresenceStatus::kOnline);
  }
  s.gated = putting_.count(user) != 0;
  if (auto it = last_error_.find(user); it != last_error_.end()) {
    report_previous_failure(s, it->second);
    last_error_.erase(it);
  }
  return Status::ok();
}

void Node::Impl::report_previous_failure(Session& s, const Status& reason) {
  ErrorEv ev{0, reason.code(), "your previous connection failed: " + reason.message(), "", ""};
  ev.about = "previous_connection";
  queue_event(s, std::move(ev));
}

void Node::Impl::close_session(SessionId id, const Status& reason) {
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
    write(DirectoryEraseOp{s.user, opt_.node_id});
    set_status(s.user, PresenceStatus::kOffline);
  }
  if (!reason.is_ok()) {
    if (opt_.report_last_failure) last_error_[s.user] = reason;
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

void Node::Impl::on_client_frame(SessionId id, const void* data, size_t size) {
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

void Node::Impl::on_client_request(SessionId id, const ClientRequest& request) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  Session& s = it->second;
  if (s.gated || !s.waiting.empty() || needs_lookup(s, request)) return wait_for_store(s, request);
  dispatch(s, request);
}

void Node::Impl::on_session_drained(SessionId id, size_t bytes) {
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

Status Node::Impl::authorize(const Session& s, const std::string& group_id) { return authorize(s.user, group_id); }

// A member's requests are authorised from the membership cache (no store
// read on the send path); the cache entry is made by the first check that
// reads the store, and ends with member_removed(), an epoch change or
// membership_ttl_ms. Anything else asks the store.
Status Node::Impl::authorize(const std::string& user, const std::string& group_id) {
  if (Status st = validate_id(group_id, "group_id", opt_.limits); !st) return st;
  if (member_cached(user, group_id)) {
    refresh_ahead(user, group_id);
    return Status::ok();
  }
  bool member = false;
  bool exists = true;
  if (const LookupResult* a = answer_for(group_id, user)) {  // what the store said a moment ago
    if (!a->status) return a->status;
    member = a->member;
    exists = a->group_exists;
  } else {
    ++stats_.membership_reads;
    Result<std::optional<Role>> role = stores_.membership.role_of(group_id, user);
    if (!role) {
      ++stats_.store_errors;
      return role.status();
    }
    member = role->has_value();
    if (!member) {
      Result<bool> found = stores_.membership.group_exists(group_id);
      exists = !found || *found;
    }
  }
  if (member) {
    members_[group_id][user] = clock_.now_ms() + opt_.membership_ttl_ms;
    return Status::ok();
  }
  return member_status(false, exists, user, group_id);
}

uint64_t Node::Impl::take_send_token(const std::string& user) {
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

void Node::Impl::reply_error(Session& s, uint64_t rid, const Status& st, const std::string& group_id,
                 const std::string& cid) {
  queue_event(s, ErrorEv{rid, st.code(), st.message(), group_id, cid});
}

void Node::Impl::handle(Session& s, const SendReq& r) {
  ++stats_.sends;
  Status st = validate_send(s.user, r);
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
  PendingSend p{s.id, r.rid, r.client_msg_id, r.group_id, nullptr};
  if (opt_.mutations.ack_before_commit) {
    queue_event(s, AckEv{r.rid, r.group_id, r.client_msg_id, 0, clock_.now_ms(), false});
    p.session = 0;  // nobody to answer after the commit
  }
  queue_send(s.user, r, std::move(p));
}

void Node::Impl::send_as(const std::string& user, const SendReq& r, Node::RequestDone done) {
  ++stats_.sends;
  Status st = validate_id(user, "user_id", opt_.limits);
  if (st) st = validate_send(user, r);
  if (st) st = authorize(user, r.group_id);
  if (!st) {
    ++stats_.send_errors;
    return done(ErrorEv{r.rid, st.code(), st.message(), r.group_id, r.client_msg_id});
  }
  if (uint64_t wait_ms = take_send_token(user); wait_ms != 0) {
    ++stats_.send_errors;
    ErrorEv ev{r.rid, Code::kLimitExceeded,
               fmt::format("more than {} sends a second; retry in {} ms", opt_.send_rate_per_user, wait_ms),
               r.group_id, r.client_msg_id};
    ev.retry_after_ms = wait_ms;
    return done(ev);
  }
  queue_send(user, r, PendingSend{0, r.rid, r.client_msg_id, r.group_id, std::move(done)});
}

void Node::Impl::queue_send(const std::string& user, const SendReq& r, PendingSend p) {
  pending_.push_back(std::move(p));
  AppendRequest a;
  a.group_id = r.group_id;
  a.user_id = user;
  a.client_msg_id = opt_.mutations.no_dedup ? std::string() : r.client_msg_id;
  a.contents = r.contents;
  a.timestamp_ms = clock_.now_ms();
  a.entry = r.entry;
  a.epoch = r.epoch;
  pending_requests_.push_back(std::move(a));
}

Status Node::Impl::validate_send(const std::string& user, const SendReq& r) const {
  if (written_by_host(r.entry.kind)) {
    return error(Code::kInvalidArgument,
                 fmt::format("a {} entry is written by the host, not sent", entry_kind_name(r.entry.kind)));
  }
  if (Status st = validate_submission(r.group_id, user, r.client_msg_id, r.contents, opt_.limits); !st) return st;
  return validate_entry(r.entry, r.contents, opt_.limits);
}

void Node::Impl::handle(Session& s, const ResumeReq& r) {
  if (Status st = authorize(s, r.group_id); !st) return reply_error(s, r.rid, st, r.group_id);
  Result<GroupState*> g = ensure_group(r.group_id, s.user);
  if (!g) return reply_error(s, r.rid, g.status(), r.group_id);
  // A client ahead of this node (a newer epoch, or a later message, seen
  // through another node) makes it ask the store first.
  std::optional<GroupHead> stored;
  if (r.epoch > (*g)->epoch || r.after > detector_.known_head(r.group_id)) {
    Result<GroupHead> head = head_of(r.group_id, s.user);
    if (!head) return reply_error(s, r.rid, head.status(), r.group_id);
    stored = *head;
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

void Node::Impl::handle(Session& s, const UnsubscribeReq& r) {
  if (s.subs.erase(r.group_id) == 0) {
    return reply_error(s, r.rid, error(Code::kNotFound, "not subscribed to " + r.group_id), r.group_id);
  }
  drop_subscriber(r.group_id, s.id);
}

void Node::Impl::handle(Session& s, const PullReq& r) {
  Result<PullResultEv> ev = pull(s.user, r);
  if (!ev) return reply_error(s, r.rid, ev.status(), r.group_id);
  if (auto sub = s.subs.find(r.group_id); sub != s.subs.end() && !ev->folded && !ev->messages.empty()) {
    sub->second.cursor = std::max(sub->second.cursor, ev->messages.back()->msg_id);
  }
  queue_event(s, *ev);
}

Result<PullResultEv> Node::Impl::pull(const std::string& user, const PullReq& r) {
  ++stats_.pulls;
  PARLEY_TRY(authorize(user, r.group_id));
  if (r.fold) return pull_folded(user, r);
  auto git = groups_.find(r.group_id);
  uint64_t head = 0;
  uint64_t epoch = 0;
  if (git != groups_.end()) {
    head = detector_.delivered(r.group_id);
    epoch = git->second.epoch;
  } else {
    Result<GroupHead> h = head_of(r.group_id, user);
    if (!h) return h.status();
    head = h->head;
    epoch = h->epoch;
  }
  if (r.epoch != 0 && epoch != 0 && r.epoch != epoch) {
    if (r.epoch > epoch && git != groups_.end()) resync_.insert(r.group_id);  // we are behind
    return error(Code::kEpochMismatch,
                 fmt::format("'{}' is in epoch {}, not {}: resume from 0", r.group_id, epoch, r.epoch));
  }
  std::vector<MessageLog::Entry> entries;
  const size_t limit = std::min<size_t>(r.limit, opt_.limits.max_read_limit);
  if (r.after < head) {
    const LookupResult* a = answer_for(r.group_id, user);
    Status st;
    if (a != nullptr && !log_.covers(r.group_id, r.after)) {  // the range was read with the lookup
      st = a->read_status;
      for (const Message& m : a->messages) entries.push_back({std::make_shared<const Message>(m), nullptr});
    } else {
      st = log_.read(r.group_id, r.after, std::min<uint64_t>(limit, head - r.after), &entries);
    }
    if (!st) {
      ++stats_.store_errors;
      return st;
    }
  }
  PullResultEv ev;
  ev.rid = r.rid;
  ev.group_id = r.group_id;
  ev.head = head;
  ev.epoch = epoch;
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

// A folded page comes from the store as it stands (the lookup read it on
// the executor; inline, it is read here), not from the node's log.
Result<PullResultEv> Node::Impl::pull_folded(const std::string& user, const PullReq& r) {
  FoldedPage page;
  Status st;
  if (const LookupResult* a = answer_for(r.group_id, user); a != nullptr && a->folded) {
    st = a->read_status;
    page = a->page;
  } else {
    st = stores_.messages.read_folded(r.group_id, r.after, std::min<size_t>(r.limit, opt_.limits.max_read_limit),
                                      user, &page);
  }
  if (!st) {
    ++stats_.store_errors;
    return st;
  }
  if (r.epoch != 0 && page.epoch != 0 && r.epoch != page.epoch) {
    return error(Code::kEpochMismatch,
                 fmt::format("'{}' is in epoch {}, not {}: read from 0", r.group_id, page.epoch, r.epoch));
  }
  PullResultEv ev;
  ev.rid = r.rid;
  ev.group_id = r.group_id;
  ev.head = page.head;
  ev.epoch = page.epoch;
  ev.folded = true;
  ev.to = page.to;
  ev.folds = std::move(page.folds);
  ev.messages.reserve(page.messages.size());
  for (Message& m : page.messages) ev.messages.push_back(std::make_shared<const Message>(std::move(m)));
  return ev;
}

void Node::Impl::handle(Session& s, const TypingReq& r) {
  if (Status st = authorize(s, r.group_id); !st) return reply_error(s, r.rid, st, r.group_id);
  int64_t expires = 0;
  if (!presence_.typing(s.user, r.group_id, clock_.now_ms(), &expires)) return;
  PresenceStatus status = presence_.status(s.user, clock_.now_ms());
  broadcast_presence(PresenceEv{s.user, r.group_id, status, true, expires});
}

void Node::Impl::handle(Session& s, const PresenceReq& r) {
  if (r.status == PresenceStatus::kOffline) {
    return reply_error(s, r.rid, error(Code::kInvalidArgument, "status must be online or away"), "");
  }
  s.presence_sub = r.subscribe;
  s.receipts_sub = r.receipts;
  set_status(s.user, r.status);
}

void Node::Impl::set_status(const std::string& user, PresenceStatus status) {
  if (!presence_.set_local(user, status)) return;
  broadcast_status(user, status);
  if (stores_.presence != nullptr && status != PresenceStatus::kOffline) {
    write(PresenceOp{user, opt_.node_id, status});
  }
}

}  // namespace parley
