// Node::Impl: Groups and routes: group state, interest, routes to peer nodes, peer
// batches, the head sync and the timers.
#include "core/node_impl.hpp"

namespace parley {

Result<GroupState*> Node::Impl::ensure_group(const std::string& group_id, const std::string& user) {
  auto it = groups_.find(group_id);
  if (it != groups_.end()) return &it->second;
  Result<GroupHead> head = head_of(group_id, user);
  if (!head) return head.status();
  GroupState& g = groups_[group_id];
  set_epoch(g, head->epoch);
  detector_.track(group_id, head->head);
  announce_interest(group_id, *head);
  return &g;
}

void Node::Impl::announce_interest(const std::string& group_id, const GroupHead& head) {
  forget_route(group_id);
  forward_item(group_id,
               std::make_shared<const std::string>(detail::encode_interest_item(group_id, head.epoch, head.head)));
}

// A node that started following a group read its head, then told us. What we
// committed in between went by the route we had cached, without it: send it
// those from our tail (decision 48). It drops what it has; what our tail no
// longer holds it heals from the store, as before.
void Node::Impl::resend_after_interest(const std::string& to, const detail::Interest& in) {
  if (!in.has_head || to == opt_.node_id) return;
  auto g = groups_.find(in.group_id);
  if (g == groups_.end()) return;
  // Epoch 0: the group had no history when it read; then only the first
  // epoch's messages can be news to it, not an old one's that a late
  // interest (queued through a partition) finds in our tail.
  if (in.epoch != g->second.epoch && !(in.epoch == 0 && g->second.epoch == 1)) return;
  std::vector<MessageLog::Entry> tail;
  if (!log_.read_cached(in.group_id, in.head, opt_.tail_per_group, &tail)) return;
  const int64_t now = clock_.now_ms();
  for (const MessageLog::Entry& e : tail) {
    forwarder_.enqueue(to, std::make_shared<const std::string>(detail::encode_message_item(*e.message)), now);
    ++stats_.resent_on_interest;
  }
}

void Node::Impl::drop_subscriber(const std::string& group_id, SessionId id) {
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return;
  std::vector<Subscriber>& subs = it->second.subscribers;
  subs.erase(
      std::remove_if(subs.begin(), subs.end(), [id](const Subscriber& x) { return x.session->id == id; }),
      subs.end());
  if (!subs.empty()) return;
  groups_.erase(it);
  member_counts_.erase(group_id);
  detector_.untrack(group_id);
  log_.forget(group_id);
  policy_.forget(group_id);
}

void Node::Impl::member_removed(const std::string& group_id, const std::string& user) {
  forget_route(group_id);
  if (auto g = members_.find(group_id); g != members_.end()) {
    g->second.erase(user);
    if (g->second.empty()) members_.erase(g);
  }
  auto it = user_sessions_.find(user);
  if (it == user_sessions_.end()) return;
  for (SessionId id : it->second) {
    Session& s = sessions_.at(id);
    if (s.subs.erase(group_id)) drop_subscriber(group_id, id);
  }
}

const Route* Node::Impl::route_for(const std::string& group_id) {
  const int64_t now = clock_.now_ms();
  auto it = routes_.find(group_id);
  if (it != routes_.end() && it->second.expires_at > now) return &it->second;
  if (stores_.executor != nullptr) {
    // Asked at the end of the turn; the expired route serves meanwhile.
    if (!routing_.count(group_id)) routes_wanted_.insert(group_id);
    return it == routes_.end() ? nullptr : &it->second;
  }
  std::vector<StoreOpResult> r = run_store_job(job_stores(), StoreJob{0, {RouteOp{group_id, now}}});
  if (!r[0].status) {
    ++stats_.store_errors;
    return it == routes_.end() ? nullptr : &it->second;
  }
  return &(routes_[group_id] = make_route(group_id, r[0], now));
}

size_t Node::Impl::member_count(const std::string& group_id, const Route* route) const {
  if (route) return route->members.size();
  auto it = member_counts_.find(group_id);  // the route is being read again
  return it == member_counts_.end() ? 0 : it->second;
}

Route Node::Impl::make_route(const std::string& group_id, StoreOpResult& res, int64_t now) {
  Route r;
  r.members = std::move(res.users);
  member_counts_[group_id] = r.members.size();
  std::set<std::string> peers;
  for (size_t i = 0; i < res.nodes.size() && i < r.members.size(); ++i) {
    if (res.nodes[i].empty()) r.offline_members.push_back(r.members[i]);
    for (std::string& n : res.nodes[i]) {
      if (n != opt_.node_id) peers.insert(std::move(n));
    }
  }
  r.nodes.assign(peers.begin(), peers.end());
  r.expires_at = now + opt_.route_ttl_ms;
  return r;
}

void Node::Impl::forward_item(const std::string& group_id, const Frame& item) {
  const Route* route = route_for(group_id);
  if (!route && stores_.executor != nullptr) {
    unrouted_[group_id].items.push_back(item);
    return;
  }
  if (!route) return;
  for (const std::string& n : route->nodes) forwarder_.enqueue(n, item, clock_.now_ms());
}

void Node::Impl::forget_route(const std::string& group_id) {
  routes_.erase(group_id);
  // A route read already on its way may predate the change: read it again.
  if (routing_.count(group_id)) reroute_.insert(group_id);
}

void Node::Impl::ask_routes() {
  if (routes_wanted_.empty()) return;
  std::vector<std::string> groups(routes_wanted_.begin(), routes_wanted_.end());
  routes_wanted_.clear();
  const int64_t now = clock_.now_ms();
  std::vector<StoreOp> ops;
  ops.reserve(groups.size());
  for (const std::string& g : groups) {
    routing_.insert(g);
    ops.push_back(RouteOp{g, now});
  }
  submit(std::move(ops), [this, groups, now](std::vector<StoreOpResult>& results) {
    for (size_t i = 0; i < groups.size(); ++i) {
      routing_.erase(groups[i]);
      if (reroute_.erase(groups[i])) {
        routes_wanted_.insert(groups[i]);  // what waits for it keeps waiting
        continue;
      }
      if (results[i].status) {
        routes_[groups[i]] = make_route(groups[i], results[i], now);
      } else {
        ++stats_.store_errors;
      }
      release_unrouted(groups[i]);
    }
  });
}

// What waited for the route goes out now; if the store could not tell, it is
// dropped as a forward that failed (peers heal from the store).
void Node::Impl::release_unrouted(const std::string& group_id) {
  auto it = unrouted_.find(group_id);
  if (it == unrouted_.end()) return;
  Unrouted waiting = std::move(it->second);
  unrouted_.erase(it);
  auto r = routes_.find(group_id);
  if (r == routes_.end()) return;
  const Route& route = r->second;
  const int64_t now = clock_.now_ms();
  for (const Frame& item : waiting.items) {
    for (const std::string& n : route.nodes) forwarder_.enqueue(n, item, now);
  }
  std::vector<NotifyCandidate> candidates;
  for (const MessagePtr& m : waiting.messages) offline_candidates(m, route, &candidates);
  notify_offline(candidates);
}

void Node::Impl::submit(std::vector<StoreOp> ops, StoreDone done) {
  if (stores_.executor == nullptr) {
    std::vector<StoreOpResult> results = run_store_job(job_stores(), StoreJob{0, std::move(ops)});
    done(results);
    return;
  }
  const uint64_t id = next_job_++;
  store_jobs_.emplace(id, std::move(done));
  stores_.executor->run(StoreJob{id, std::move(ops)});
}

void Node::Impl::complete_store_job(uint64_t id, std::vector<StoreOpResult> results) {
  auto it = store_jobs_.find(id);
  if (it == store_jobs_.end()) return;
  StoreDone done = std::move(it->second);
  store_jobs_.erase(it);
  done(results);
}

void Node::Impl::write(StoreOp op) {
  pending_writes_.push_back(std::move(op));
  if (stores_.executor == nullptr) send_writes();
}

void Node::Impl::send_writes() {
  if (pending_writes_.empty()) return;
  std::vector<StoreOp> ops;
  ops.swap(pending_writes_);
  std::vector<std::string> erased;
  for (const StoreOp& op : ops) {
    if (const auto* e = std::get_if<DirectoryEraseOp>(&op)) erased.push_back(e->user_id);
  }
  for (const std::string& user : erased) ++erasing_[user];
  submit(std::move(ops), [this, erased = std::move(erased)](std::vector<StoreOpResult>& results) {
    for (const StoreOpResult& r : results) {
      if (!r.status) ++stats_.store_errors;
    }
    for (const std::string& user : erased) {
      auto it = erasing_.find(user);
      if (it != erasing_.end() && --it->second == 0) erasing_.erase(it);
    }
  });
}

void Node::Impl::run_resyncs() {
  if (resync_.empty() || clock_.now_ms() < resync_after_) return;
  std::vector<std::string> ids(resync_.begin(), resync_.end());
  resync_.clear();
  submit({HeadsOp{ids}}, [this, ids, asked_at = epoch_changes_](std::vector<StoreOpResult>& r) {
    if (!r[0].status) {
      ++stats_.store_errors;
      resync_.insert(ids.begin(), ids.end());  // again after retry_ms, not in a loop
      resync_after_ = clock_.now_ms() + opt_.gap.retry_ms;
      return;
    }
    for (const GroupHead& h : r[0].heads) apply_head(h);
  });
}

void Node::Impl::set_epoch(GroupState& g, uint64_t epoch) {
  if (g.epoch == epoch) return;
  g.epoch = epoch;
  g.epoch_learned = ++epoch_changes_;
}

void Node::Impl::apply_head(const GroupHead& h, uint64_t asked_at) {
  auto it = groups_.find(h.group_id);
  if (it == groups_.end()) return;
  // Read before a message told the node of the group's epoch: the answer is
  // of an older history (an epoch 0 read then is not a reset).
  if (it->second.epoch_learned > asked_at) return;
  if (it->second.epoch != 0 && h.epoch != it->second.epoch) return reset_group(h);
  set_epoch(it->second, h.epoch);  // 0 until the first append since we started following it
  detector_.note_head(h.group_id, h.head, clock_.now_ms());
}

Status Node::Impl::on_peer_batch(const void* data, size_t size) {
  Result<detail::PeerBatch> batch = detail::decode_batch(data, size, opt_.limits);
  if (!batch) return batch.status();
  ++stats_.peer_batches_in;
  stats_.peer_messages_in += batch->messages.size();
  for (const MessagePtr& m : batch->messages) accept(m);
  // A peer's user came or went, or a peer started following a group: the
  // group's cached route is out of date.
  for (const detail::Interest& in : batch->interest) {
    forget_route(in.group_id);
    resend_after_interest(batch->from, in);
  }
  for (const detail::ReadItem& r : batch->reads) deliver_read_locally(r.user_id, r.state, 0);
  for (const detail::NotifyItem& n : batch->levels) deliver_notify_locally(n.user_id, n.group_id, n.level, 0);
  for (const PresenceEv& p : batch->presence) {
    if (!p.typing) forget_route(p.group_id);
    presence_.observe_remote(p, clock_.now_ms());
    deliver_presence_locally(p);
  }
  return Status::ok();
}

void Node::Impl::on_timer() {
  const int64_t now = clock_.now_ms();
  armed_at_ = INT64_MAX;
  forwarder_.poll(now);
  flush_receipts(now);
  if (now >= next_head_sync_) head_sync(now);
  if (now >= next_dir_refresh_) {
    next_dir_refresh_ = now + opt_.directory_ttl_ms / 3;
    write(DirectoryRefreshOp{opt_.node_id, now + opt_.directory_ttl_ms, now});
    prune_routes(now);
    prune_members(now);
    presence_.expire(now);
  }
  if (retry_pump_at_ != 0 && retry_pump_at_ <= now) {
    retry_pump_at_ = 0;
    pump_set_.insert(pump_later_.begin(), pump_later_.end());
    pump_later_.clear();
  }
  flush();
}

void Node::Impl::prune_members(int64_t now) {
  for (auto g = members_.begin(); g != members_.end();) {
    for (auto u = g->second.begin(); u != g->second.end();) u = u->second <= now ? g->second.erase(u) : std::next(u);
    g = g->second.empty() ? members_.erase(g) : std::next(g);
  }
}

void Node::Impl::prune_routes(int64_t now) {
  for (auto it = routes_.begin(); it != routes_.end();) {
    const bool drop = it->second.expires_at <= now && !groups_.count(it->first) && !routing_.count(it->first);
    it = drop ? routes_.erase(it) : std::next(it);
  }
  for (auto it = member_counts_.begin(); it != member_counts_.end();) {
    it = routes_.count(it->first) || groups_.count(it->first) ? std::next(it) : member_counts_.erase(it);
  }
}

void Node::Impl::head_sync(int64_t now) {
  const int64_t jitter = static_cast<int64_t>(random_.below(opt_.head_sync_ms / 10 + 1));
  next_head_sync_ = now + opt_.head_sync_ms - opt_.head_sync_ms / 20 + jitter;
  for (auto& [group_id, g] : groups_) {
    const Route* route = route_for(group_id);
    if (auto change = policy_.evaluate(group_id, member_count(group_id, route), now)) {
      switch_mode(group_id, g, *change);
    }
  }
  if (opt_.mutations.no_head_sync || groups_.empty() || head_sync_out_) return;
  ++stats_.head_syncs;
  std::vector<std::string> ids;
  ids.reserve(groups_.size());
  for (const auto& [group_id, g] : groups_) ids.push_back(group_id);
  head_sync_out_ = true;
  submit({HeadsOp{std::move(ids)}}, [this, asked_at = epoch_changes_](std::vector<StoreOpResult>& r) {
    head_sync_out_ = false;
    if (!r[0].status) {
      ++stats_.store_errors;
      return;
    }
    for (const GroupHead& h : r[0].heads) apply_head(h, asked_at);
  });
}

void Node::Impl::reset_group(const GroupHead& h) {
  GroupState& g = groups_.at(h.group_id);
  members_.erase(h.group_id);  // a new epoch (a restored backup): memberships are read again
  set_epoch(g, h.epoch);
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

void Node::Impl::arm_timer() {
  if (!started_) return;
  int64_t t =
      std::min({detector_.next_deadline(), forwarder_.next_deadline(), next_head_sync_, next_dir_refresh_});
  if (retry_pump_at_ != 0) t = std::min(t, retry_pump_at_);
  t = std::min(t, next_receipt_at_);
  if (!resync_.empty() && resync_after_ > clock_.now_ms()) t = std::min(t, resync_after_);
  for (const auto& [group_id, g] : groups_) {
    if (g.hint_pending) t = std::min(t, g.next_hint_at);
  }
  if (t == armed_at_) return;
  armed_at_ = t;
  host_.set_timer(t);
}

}  // namespace parley
