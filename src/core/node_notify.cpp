// Node::Impl: Presence, read state and offline notifications.
#include "core/node_impl.hpp"

namespace parley {

void Node::Impl::broadcast_status(const std::string& user, PresenceStatus status) {
  submit({GroupsOfOp{user}}, [this, user, status](std::vector<StoreOpResult>& r) {
    if (!r[0].status) {
      ++stats_.store_errors;
      return;
    }
    for (const std::string& g : r[0].users) {
      forget_route(g);  // a member's node set changed
      broadcast_presence(PresenceEv{user, g, status, false, 0});
    }
  });
}

void Node::Impl::broadcast_presence(const PresenceEv& ev) {
  deliver_presence_locally(ev);
  forward_item(ev.group_id, std::make_shared<const std::string>(detail::encode_presence_item(ev)));
}

void Node::Impl::deliver_presence_locally(const PresenceEv& ev) {
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

void Node::Impl::handle(Session& s, const ReadReq& r) {
  if (Status st = authorize(s, r.group_id); !st) return reply_error(s, r.rid, st, r.group_id);
  const SessionId sid = s.id;
  mark_read(s.user, r, sid, [this, sid](const ServerEvent& ev) {
    if (auto it = sessions_.find(sid); it != sessions_.end()) queue_event(it->second, ev);
  });
}

void Node::Impl::read_as(const std::string& user, const ReadReq& r, Node::RequestDone done) {
  Status st = validate_id(user, "user_id", opt_.limits);
  if (st) st = authorize(user, r.group_id);
  if (!st) return done(ErrorEv{r.rid, st.code(), st.message(), r.group_id, ""});
  mark_read(user, r, 0, std::move(done));
}

void Node::Impl::mark_read(const std::string& user, const ReadReq& r, SessionId from, Node::RequestDone done) {
  const uint64_t rid = r.rid;
  const std::string group = r.group_id;
  submit({UnreadOp{user, {group}, ReadPosition{r.epoch, r.msg_id}}},
         [this, from, user, rid, group, done = std::move(done)](std::vector<StoreOpResult>& res) {
           if (!res[0].status) {
             if (res[0].status.code() != Code::kEpochMismatch) ++stats_.store_errors;
             return done(ErrorEv{rid, res[0].status.code(), res[0].status.message(), group, ""});
           }
           const ReadState& state = res[0].reads[0];
           done(ReadEv{rid, state});
           if (res[0].moved) share_read(user, state, from);
         });
}

void Node::Impl::handle(Session& s, const UnreadReq& r) {
  for (const std::string& g : r.group_ids) {
    if (Status st = validate_id(g, "group_id", opt_.limits); !st) return reply_error(s, r.rid, st, "");
  }
  const SessionId sid = s.id;
  const uint64_t rid = r.rid;
  submit({UnreadOp{s.user, r.group_ids, std::nullopt}}, [this, sid, rid](std::vector<StoreOpResult>& res) {
    auto it = sessions_.find(sid);
    if (it == sessions_.end()) return;
    if (!res[0].status) {
      // Not a member of a group named: as for any request on it.
      Status st = res[0].status.code() == Code::kNotFound
                      ? error(Code::kPermissionDenied, res[0].status.message())
                      : res[0].status;
      if (res[0].status.code() != Code::kNotFound) ++stats_.store_errors;
      return reply_error(it->second, rid, st, "");
    }
    queue_event(it->second, UnreadEv{rid, std::move(res[0].reads)});
  });
}

void Node::Impl::handle(Session& s, const NotifyReq& r) {
  if (Status st = authorize(s, r.group_id); !st) return reply_error(s, r.rid, st, r.group_id);
  const SessionId sid = s.id;
  const std::string user = s.user;
  const uint64_t rid = r.rid;
  const bool set = r.level.has_value();
  submit({NotifyLevelOp{user, r.group_id, r.level}}, [this, sid, user, rid, set, group = r.group_id](
                                                         std::vector<StoreOpResult>& res) {
    if (!res[0].status) {
      Status st = res[0].status.code() == Code::kNotFound ? error(Code::kPermissionDenied, res[0].status.message())
                                                          : res[0].status;
      if (res[0].status.code() != Code::kNotFound) ++stats_.store_errors;
      if (auto it = sessions_.find(sid); it != sessions_.end()) reply_error(it->second, rid, st, group);
      return;
    }
    const NotifyLevel level = res[0].levels[0];
    if (auto it = sessions_.find(sid); it != sessions_.end()) queue_event(it->second, NotifyEv{rid, group, level});
    if (!set) return;
    // The user's other sessions hear of a change, here and on the group's route nodes.
    deliver_notify_locally(user, group, level, sid);
    forward_item(group, std::make_shared<const std::string>(detail::encode_notify_item({user, group, level})));
  });
}

void Node::Impl::deliver_notify_locally(const std::string& user, const std::string& group, NotifyLevel level,
                                        SessionId except) {
  auto it = user_sessions_.find(user);
  if (it == user_sessions_.end()) return;
  for (SessionId id : it->second) {
    if (id != except) queue_event(sessions_.at(id), NotifyEv{0, group, level});
  }
}

void Node::Impl::share_read(const std::string& user, const ReadState& state, SessionId except) {
  deliver_read_locally(user, state, except);
  forward_item(state.group_id, std::make_shared<const std::string>(detail::encode_read_item({user, state})));
}

void Node::Impl::deliver_read_locally(const std::string& user, const ReadState& state, SessionId except) {
  receipt(user, state);
  auto it = user_sessions_.find(user);
  if (it == user_sessions_.end()) return;
  Frame f;
  for (SessionId id : it->second) {
    if (id == except) continue;
    if (!f) f = encode(ReadEv{0, state});
    queue_frame(sessions_.at(id), f);
  }
}

void Node::Impl::receipt(const std::string& user, const ReadState& state) {
  const int64_t now = clock_.now_ms();
  ReceiptThrottle& t = receipts_[{user, state.group_id}];
  if (now - t.sent_at >= opt_.presence.typing_throttle_ms) {
    t.sent_at = now;
    t.held.reset();
    return send_receipt(user, state);
  }
  t.held = state;  // the latest goes when the throttle allows
  next_receipt_at_ = std::min(next_receipt_at_, t.sent_at + opt_.presence.typing_throttle_ms);
}

void Node::Impl::send_receipt(const std::string& user, const ReadState& state) {
  auto it = groups_.find(state.group_id);
  if (it == groups_.end()) return;
  Frame f;
  for (const Subscriber& x : it->second.subscribers) {
    Session& s = *x.session;
    if (!s.receipts_sub || s.user == user) continue;
    if (!f) f = encode(ReceiptEv{state.group_id, user, state.epoch, state.msg_id});
    queue_frame(s, f);
  }
}

void Node::Impl::flush_receipts(int64_t now) {
  if (now < next_receipt_at_) return;
  next_receipt_at_ = INT64_MAX;
  for (auto it = receipts_.begin(); it != receipts_.end();) {
    ReceiptThrottle& t = it->second;
    const int64_t due = t.sent_at + opt_.presence.typing_throttle_ms;
    if (t.held && due <= now) {
      t.sent_at = now;
      send_receipt(it->first.first, *t.held);
      t.held.reset();
    } else if (t.held) {
      next_receipt_at_ = std::min(next_receipt_at_, due);
    }
    // Past its window with nothing held: forgotten.
    it = !t.held && now - t.sent_at >= opt_.presence.typing_throttle_ms ? receipts_.erase(it) : std::next(it);
  }
}

std::string Node::Impl::utf8_prefix(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // s[n] continues a character
  return s.substr(0, n);
}

Notification Node::Impl::notification_for(const std::string& user, const Message& m, std::string reason) {
  const std::vector<std::string>& mn = m.entry.mentions;
  return Notification{user,
                      m.group_id,
                      m.epoch,
                      m.msg_id,
                      m.user_id,
                      utf8_prefix(m.contents, opt_.notify_preview_bytes),
                      std::move(reason),
                      std::find(mn.begin(), mn.end(), user) != mn.end()};
}

// Whether a member at `level` is notified of `n` (its `mentioned` set).
bool Node::Impl::wanted(NotifyLevel level, const Notification& n) {
  return level == NotifyLevel::kAll || (level == NotifyLevel::kMentions && n.mentioned);
}

// One NotifyLevelsOp per group of `wanted`, appended to `ops`; `at` gets
// (group -> index of its op).
void Node::Impl::level_ops(const std::map<std::string, std::set<std::string>>& wanted, std::vector<StoreOp>* ops,
                           std::map<std::string, size_t>* at) {
  for (const auto& [g, users] : wanted) {
    (*at)[g] = ops->size();
    ops->push_back(NotifyLevelsOp{g, std::vector<std::string>(users.begin(), users.end())});
  }
}

// The level of `user` in `group` from a job's NotifyLevelsOp results (kAll
// when the store did not answer: a notification too many rather than one lost).
NotifyLevel Node::Impl::level_of(const std::vector<StoreOpResult>& r,
                                 const std::map<std::string, std::set<std::string>>& asked,
                                 const std::map<std::string, size_t>& at, const std::string& group,
                                 const std::string& user) {
  auto g = at.find(group);
  if (g == at.end()) return NotifyLevel::kAll;
  const StoreOpResult& res = r[g->second];
  const std::set<std::string>& users = asked.at(group);
  const size_t i = static_cast<size_t>(std::distance(users.begin(), users.find(user)));
  if (!res.status || i >= res.levels.size()) return NotifyLevel::kAll;
  return res.levels[i];
}

// Whether the directory's nodes for a user hold a live session: this node's
// own entry counts only while the user has a session here (its erase may
// still be on the way to the store).
bool Node::Impl::online_elsewhere_or_here(const std::string& user, const std::vector<std::string>& nodes) const {
  for (const std::string& n : nodes) {
    if (n != opt_.node_id || user_sessions_.count(user)) return true;
  }
  return false;
}

// Asks the directory where the candidates' users are (a store job: with an
// executor the answer comes in a later turn, read after this turn's
// writes), then notifies those with no live session anywhere.
void Node::Impl::notify_offline(const std::vector<NotifyCandidate>& candidates) {
  if (candidates.empty()) return;
  std::vector<std::string> users;
  for (const NotifyCandidate& c : candidates) users.insert(users.end(), c.users.begin(), c.users.end());
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  // Where they are and, in the same job, their notification levels.
  std::map<std::string, std::set<std::string>> asked;
  for (const NotifyCandidate& c : candidates) asked[c.message->group_id].insert(c.users.begin(), c.users.end());
  std::vector<StoreOp> ops{NodesOfOp{users, clock_.now_ms()}};
  std::map<std::string, size_t> at;
  level_ops(asked, &ops, &at);
  submit(std::move(ops), [this, users, candidates, asked, at](std::vector<StoreOpResult>& r) {
    if (!r[0].status || r[0].nodes.size() != users.size()) {
      ++stats_.store_errors;
      return;
    }
    std::unordered_set<std::string> offline;
    for (size_t i = 0; i < users.size(); ++i) {
      if (!online_elsewhere_or_here(users[i], r[0].nodes[i])) offline.insert(users[i]);
    }
    for (const NotifyCandidate& c : candidates) {
      for (const std::string& u : c.users) {
        if (!offline.count(u)) continue;
        Notification n = notification_for(u, *c.message, "offline");
        if (!wanted(level_of(r, asked, at, c.message->group_id, u), n)) continue;
        ++stats_.notifications;
        notifier_->notify(n);
      }
    }
  });
}

void Node::Impl::notify_undelivered(const Session& s, const Status& reason) {
  if (!notifier_ || s.undrained.empty()) return;
  // What the user missed, decided now: sessions of the same user that
  // closed before this one were handed some of these messages, and those
  // count as delivered (the record goes with this, the user's last, session).
  std::vector<MessagePtr> missed;
  auto handed = handed_to_closed_.find(s.user);
  for (const auto& [end, m] : s.undrained) {
    // Only others' messages notify (as for offline members): not edits, reactions or membership entries.
    if (m->entry.kind != EntryKind::kMessage || m->user_id == s.user) continue;
    if (handed != handed_to_closed_.end()) {
      auto rec = handed->second.find(m->group_id);
      if (rec != handed->second.end() && rec->second.epoch == m->epoch && rec->second.cursor >= m->msg_id) {
        continue;
      }
    }
    missed.push_back(m);
  }
  if (missed.empty()) return;
  const std::string user = s.user;
  const std::string why = reason.to_string();
  std::map<std::string, std::set<std::string>> asked;
  for (const MessagePtr& m : missed) asked[m->group_id].insert(user);
  std::vector<StoreOp> ops{NodesOfOp{{user}, clock_.now_ms()}};
  std::map<std::string, size_t> at;
  level_ops(asked, &ops, &at);
  submit(std::move(ops), [this, user, why, missed, asked, at](std::vector<StoreOpResult>& r) {
    if (!r[0].status || r[0].nodes.size() != 1) {
      ++stats_.store_errors;
      return;
    }
    if (online_elsewhere_or_here(user, r[0].nodes[0])) return;
    for (const MessagePtr& m : missed) {
      Notification n = notification_for(user, *m, why);
      if (!wanted(level_of(r, asked, at, m->group_id, user), n)) continue;
      ++stats_.notifications;
      notifier_->notify(n);
    }
  });
}

}  // namespace parley
