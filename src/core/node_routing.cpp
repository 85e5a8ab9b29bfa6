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
  g.epoch = head->epoch;
  detector_.track(group_id, head->head);
  announce_interest(group_id);
  return &g;
}

void Node::Impl::announce_interest(const std::string& group_id) {
  routes_.erase(group_id);
  const Route* route = route_for(group_id);
  if (!route || route->nodes.empty()) return;
  Frame item = std::make_shared<const std::string>(detail::encode_interest_item(group_id));
  for (const std::string& n : route->nodes) forwarder_.enqueue(n, item, clock_.now_ms());
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
  detector_.untrack(group_id);
  log_.forget(group_id);
  policy_.forget(group_id);
}

void Node::Impl::member_removed(const std::string& group_id, const std::string& user) {
  routes_.erase(group_id);
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

void Node::Impl::run_resyncs() {
  if (resync_.empty()) return;
  std::vector<std::string> ids(resync_.begin(), resync_.end());
  resync_.clear();
  if (!resync_now(ids)) resync_.insert(ids.begin(), ids.end());  // next turn
}

Status Node::Impl::resync_now(const std::vector<std::string>& ids) {
  std::vector<GroupHead> heads;
  if (Status st = stores_.messages.heads(ids, &heads); !st) {
    ++stats_.store_errors;
    return st;
  }
  for (const GroupHead& h : heads) apply_head(h);
  return Status::ok();
}

void Node::Impl::apply_head(const GroupHead& h) {
  auto it = groups_.find(h.group_id);
  if (it == groups_.end()) return;
  if (it->second.epoch != 0 && h.epoch != it->second.epoch) return reset_group(h);
  it->second.epoch = h.epoch;  // 0 until the first append since we started following it
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
  for (const std::string& g : batch->interest) routes_.erase(g);
  for (const PresenceEv& p : batch->presence) {
    if (!p.typing) routes_.erase(p.group_id);
    presence_.observe_remote(p, clock_.now_ms());
    deliver_presence_locally(p);
  }
  return Status::ok();
}

void Node::Impl::on_timer() {
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
    it = it->second.expires_at <= now ? routes_.erase(it) : std::next(it);
  }
}

void Node::Impl::head_sync(int64_t now) {
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

void Node::Impl::reset_group(const GroupHead& h) {
  GroupState& g = groups_.at(h.group_id);
  members_.erase(h.group_id);  // a new epoch (a restored backup): memberships are read again
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

void Node::Impl::arm_timer() {
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

}  // namespace parley
