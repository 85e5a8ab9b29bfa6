// Node::Impl: Delivery: accepting messages into the tail log, gap catch-ups, fan-out,
// delivery modes, resumes and pumping, and each session's bounded output.
#include "core/node_impl.hpp"

namespace parley {

void Node::Impl::accept(const MessagePtr& m) {
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

bool Node::Impl::in_epoch(GroupState& g, const std::string& group_id, uint64_t epoch) {
  if (epoch == 0 || epoch == g.epoch || opt_.mutations.ignore_epochs) return true;
  if (g.epoch == 0) {  // the group had no history when we started following it
    set_epoch(g, epoch);
    return true;
  }
  if (epoch > g.epoch) resync_.insert(group_id);
  return false;
}

void Node::Impl::run_catch_ups() {
  std::vector<CatchUpRequest> due;
  detector_.due(clock_.now_ms(), &due);
  for (CatchUpRequest& c : due) {
    if (catching_up_.count(c.group_id)) continue;  // a page is out; it goes on from there
    ++stats_.catch_ups;
    catch_up(std::move(c));
  }
}

void Node::Impl::catch_up(CatchUpRequest c) {
  while (c.after < c.until && detector_.tracking(c.group_id)) {
    const size_t want = std::min<uint64_t>(opt_.catch_up_page, c.until - c.after);
    uint64_t job = 0;
    std::optional<ReadResult> r =
        read_range({ReadWait::For::kCatchUp, c.group_id, c.after, c.until, 0}, want, &job);
    if (!r) {
      catching_up_.insert(c.group_id);
      return;
    }
    if (!apply_catch_up_page(c, *r)) return;
  }
}

bool Node::Impl::apply_catch_up_page(CatchUpRequest& c, ReadResult& r) {
  if (!r.status) {
    // Retention removed what is missing: nobody can have it any more.
    if (r.status.code() == Code::kTrimmed && r.trimmed > c.after) {
      skip_trimmed(c.group_id, r.trimmed);
      c.after = r.trimmed;
      return true;
    }
    ++stats_.store_errors;
    return false;  // asked again after retry_ms
  }
  auto git = groups_.find(c.group_id);
  if (r.messages.empty() || git == groups_.end()) return false;
  std::vector<MessagePtr> ready;
  for (Message& msg : r.messages) {
    if (!in_epoch(git->second, c.group_id, msg.epoch)) return false;
    c.after = msg.msg_id;
    ++stats_.catch_up_messages;
    detector_.offer(std::make_shared<const Message>(std::move(msg)), clock_.now_ms(), &ready);
  }
  for (const MessagePtr& m : ready) deliver(m);
  return true;
}

std::optional<ReadResult> Node::Impl::read_range(ReadWait wait, size_t limit, uint64_t* job_id) {
  ReadJob job{next_job_++, wait.group_id, wait.after, limit};
  *job_id = job.id;
  if (stores_.executor == nullptr) return run_read(stores_.messages, job);
  reads_.emplace(job.id, std::move(wait));
  stores_.executor->read(std::move(job));
  return std::nullopt;
}

void Node::Impl::complete_read(uint64_t id, ReadResult result) {
  auto it = reads_.find(id);
  if (it == reads_.end()) return;
  ReadWait w = std::move(it->second);
  reads_.erase(it);
  if (w.purpose == ReadWait::For::kCatchUp) {
    catching_up_.erase(w.group_id);
    CatchUpRequest c{w.group_id, w.after, w.until};
    if (detector_.tracking(c.group_id) && apply_catch_up_page(c, result)) catch_up(std::move(c));
    return;
  }
  Session* s = session(w.session);
  if (!s) return;
  auto sub = s->subs.find(w.group_id);
  if (sub == s->subs.end() || sub->second.read_job != id) return;
  Subscription& x = sub->second;
  x.read_job = 0;
  if (!needs_catch_up(w.group_id, x)) return;
  if (x.cursor != w.after) {  // moved meanwhile (a pull): read again from where it is
    pump_set_.insert(s->id);
    return;
  }
  std::vector<MessageLog::Entry> page;
  page.reserve(result.messages.size());
  for (Message& m : result.messages) page.push_back({std::make_shared<const Message>(std::move(m)), nullptr});
  // The pump goes on at the end of the turn, unless this page stopped it.
  if (apply_pump_page(*s, w.group_id, x, result.status, page, result.trimmed)) pump_set_.insert(s->id);
}

void Node::Impl::skip_trimmed(const std::string& group_id, uint64_t trimmed) {
  std::vector<MessagePtr> ready;
  detector_.skip_to(group_id, trimmed, &ready);
  for (const MessagePtr& r : ready) deliver(r);
  auto g = groups_.find(group_id);
  if (g == groups_.end()) return;
  for (const Subscriber& x : g->second.subscribers) pump_set_.insert(x.session->id);
}

void Node::Impl::deliver(const MessagePtr& m) {
  auto git = groups_.find(m->group_id);
  if (git == groups_.end()) return;
  GroupState& g = git->second;
  const int64_t now = clock_.now_ms();
  const Route* route = route_for(m->group_id);
  if (auto change = policy_.observe(m->group_id, member_count(m->group_id, route), now)) {
    switch_mode(m->group_id, g, *change);
  }
  // A delete erases its message and the message's edits from the cached
  // tail too: nothing read from this node after it carries the old text.
  if (m->entry.kind == EntryKind::kDelete) log_.erase(m->group_id, m->entry.target);
  MessageLog::Entry entry{m, nullptr};
  if (policy_.mode(m->group_id) == DeliveryMode::kPull) {
    g.hint_pending = true;
  } else {
    fan_out(g, entry);
  }
  log_.append(std::move(entry));
  if (is_membership(m->entry.kind)) apply_membership(*m);
}

void Node::Impl::apply_membership(const Message& m) {
  if (m.entry.kind == EntryKind::kLeave) return member_removed(m.group_id, m.user_id);
  if (m.entry.kind == EntryKind::kRemoved) return member_removed(m.group_id, m.contents);
  forget_route(m.group_id);  // a join: the new member's nodes join the route
}

void Node::Impl::fan_out(GroupState& g, MessageLog::Entry& entry) {
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

void Node::Impl::switch_mode(const std::string& group_id, GroupState& g, DeliveryMode mode) {
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

void Node::Impl::send_hints() {
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

bool Node::Impl::needs_catch_up(const std::string& group_id, const Subscription& sub) const {
  return !sub.paused && (sub.resume_pending || sub.cursor < detector_.delivered(group_id));
}

void Node::Impl::pump_sessions() {
  if (pump_set_.empty()) return;
  std::vector<SessionId> ids(pump_set_.begin(), pump_set_.end());
  pump_set_.clear();
  for (SessionId id : ids) {
    if (Session* s = session(id)) pump(*s);
  }
}

void Node::Impl::pump(Session& s) {
  for (auto& [group_id, sub] : s.subs) {
    while (sub.read_job == 0 && needs_catch_up(group_id, sub)) {
      const uint64_t head = detector_.delivered(group_id);
      if (sub.cursor >= head) {
        finish_resume(s, group_id, sub);
        break;
      }
      if (s.pending_bytes() >= opt_.session_queue_bytes / 2) return;  // drained later
      std::vector<MessageLog::Entry> page;
      const size_t want = std::min<uint64_t>(opt_.catch_up_page, head - sub.cursor);
      Status st;
      uint64_t trimmed = 0;
      if (!log_.read_cached(group_id, sub.cursor, want, &page)) {
        uint64_t job = 0;
        std::optional<ReadResult> r =
            read_range({ReadWait::For::kPump, group_id, sub.cursor, 0, s.id}, want, &job);
        if (!r) {
          sub.read_job = job;  // complete_read goes on
          break;
        }
        st = r->status;
        trimmed = r->trimmed;
        for (Message& m : r->messages) page.push_back({std::make_shared<const Message>(std::move(m)), nullptr});
      }
      if (!apply_pump_page(s, group_id, sub, st, page, trimmed)) return;
    }
  }
}

bool Node::Impl::apply_pump_page(Session& s, const std::string& group_id, Subscription& sub, const Status& st,
                                 std::vector<MessageLog::Entry>& page, uint64_t trimmed) {
  if (st.code() == Code::kTrimmed && trimmed > sub.cursor) {
    // Tell the client where its history starts again, then go on.
    reply_error(s, sub.resume_pending ? sub.resume_rid : 0,
                error(Code::kTrimmed, fmt::format("history of group '{}' is trimmed before id {}; "
                                                  "delivery goes on from there",
                                                  group_id, trimmed + 1)),
                group_id);
    sub.cursor = trimmed;
    return true;
  }
  if (!st || page.empty()) {
    if (!st) ++stats_.store_errors;
    retry_pump_at_ = clock_.now_ms() + opt_.gap.retry_ms;
    pump_later_.insert(s.id);  // not at once: a store that fails fast would be asked in a loop
    return false;
  }
  GroupState& g = groups_.at(group_id);
  for (MessageLog::Entry& e : page) {
    if (!in_epoch(g, group_id, e.message->epoch)) return false;
    if (e.message->msg_id != sub.cursor + 1) break;
    if (!e.frame) e.frame = encode(MessageEv{e.message});
    queue_message(s, e);
    sub.cursor = e.message->msg_id;
    // Large messages: stop mid-page rather than overflow the queue;
    // the pump goes on when the session drains.
    if (s.pending_bytes() >= opt_.session_queue_bytes / 2) return false;
  }
  return true;
}

void Node::Impl::finish_resume(Session& s, const std::string& group_id, Subscription& sub) {
  if (!sub.resume_pending) return;
  sub.resume_pending = false;
  auto g = groups_.find(group_id);
  queue_event(s, ResumedEv{sub.resume_rid, group_id, detector_.delivered(group_id),
                           g == groups_.end() ? 0 : g->second.epoch, policy_.mode(group_id)});
}

Frame Node::Impl::encode(const ServerEvent& ev) {
  return std::make_shared<const std::string>(codec_->encode_event(ev));
}

void Node::Impl::queue_frame(Session& s, const Frame& f) {
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

void Node::Impl::queue_message(Session& s, const MessageLog::Entry& e) {
  queue_frame(s, e.frame);
  ++stats_.deliveries;
  if (notifier_) s.undrained.emplace_back(s.queued_total, e.message);
}

void Node::Impl::queue_event(Session& s, const ServerEvent& ev) { queue_frame(s, encode(ev)); }

void Node::Impl::cut_off_behind() {
  std::vector<SessionId> ids;
  ids.swap(behind_);
  for (SessionId id : ids) fell_behind(id);
}

void Node::Impl::fell_behind(SessionId id) {
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

size_t Node::Impl::disconnect_user(const std::string& user, const std::string& why) {
  auto it = user_sessions_.find(user);
  if (it == user_sessions_.end()) return 0;
  const std::vector<SessionId> ids = it->second;  // close_session edits the list
  const Status reason =
      error(Code::kPermissionDenied, why.empty() ? "disconnected by the app" : "disconnected by the app: " + why);
  for (SessionId id : ids) end_session(id, reason, "disconnected");
  return ids.size();
}

void Node::Impl::end_session(SessionId id, const Status& reason, const std::string& about) {
  Session* s = session(id);
  if (!s) return;
  ErrorEv ev{0, reason.code(), reason.message(), "", ""};
  ev.about = about;
  queue_event(*s, ev);
  write_outbox(*s);  // before the close, after what was queued for it
  host_.close_session(id, reason);
  close_session(id, reason);
}

void Node::Impl::write_outbox(Session& s) {
  if (s.outbox.empty()) return;
  host_.send_to_session(s.id, s.outbox);
  s.unacked += s.outbox_bytes;
  s.outbox_bytes = 0;
  s.outbox.clear();
}

void Node::Impl::write_outboxes() {
  for (SessionId id : dirty_) {
    if (Session* s = session(id)) {
      s->dirty = false;
      write_outbox(*s);
    }
  }
  dirty_.clear();
}

Session* Node::Impl::session(SessionId id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

}  // namespace parley
