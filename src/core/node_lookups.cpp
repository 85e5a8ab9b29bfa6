// Node::Impl: Requests waiting for the store. With an executor, a request the
// node cannot serve from what it knows (a membership it has not cached, the
// head of a group it does not follow, a pulled range its tail cache does not
// hold) waits while a LookupJob reads what it needs; the session's later
// requests wait behind it, so a session's requests are served in order.
// When the answer comes back, the first request is served with it and the
// rest follow until one needs the store again.
#include "core/node_impl.hpp"

namespace parley {

namespace {
const std::string kNoGroup;

const std::string& group_of(const ClientRequest& request) {
  return std::visit(
      [](const auto& r) -> const std::string& {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, PresenceReq> || std::is_same_v<T, UnreadReq>) {
          return kNoGroup;
        } else {
          return r.group_id;
        }
      },
      request);
}
}  // namespace

bool Node::Impl::member_cached(const std::string& user, const std::string& group_id) const {
  auto g = members_.find(group_id);
  if (g == members_.end()) return false;
  auto u = g->second.find(user);
  return u != g->second.end() && clock_.now_ms() < u->second;
}

// With an executor, a membership past half its time in the cache is read
// again in the background (one job a turn for all of them), so an active
// member's requests never wait for a lookup; the entry still ends at its
// expiry if the answer does not come.
void Node::Impl::refresh_ahead(const std::string& user, const std::string& group_id) {
  if (stores_.executor == nullptr) return;
  auto g = members_.find(group_id);
  if (g == members_.end()) return;
  auto u = g->second.find(user);
  if (u == g->second.end() || clock_.now_ms() < u->second - opt_.membership_ttl_ms / 2) return;
  if (refreshing_[group_id].insert(user).second) members_to_refresh_ = true;
}

void Node::Impl::send_refreshes() {
  if (!members_to_refresh_) return;
  members_to_refresh_ = false;
  std::vector<StoreOp> ops;
  std::vector<std::pair<std::string, std::vector<std::string>>> asked;
  for (auto& [group_id, users] : refreshing_) {
    if (users.empty() || refresh_out_.count(group_id)) continue;
    asked.push_back({group_id, std::vector<std::string>(users.begin(), users.end())});
    ops.push_back(MembersOfOp{group_id, asked.back().second});
    refresh_out_.insert(group_id);
  }
  if (ops.empty()) return;
  const int64_t asked_at = clock_.now_ms();
  submit(std::move(ops), [this, asked, asked_at](std::vector<StoreOpResult>& results) {
    for (size_t i = 0; i < asked.size(); ++i) {
      const auto& [group_id, users] = asked[i];
      refresh_out_.erase(group_id);
      if (auto r = refreshing_.find(group_id); r != refreshing_.end()) {
        for (const std::string& u : users) r->second.erase(u);
        if (r->second.empty()) {
          refreshing_.erase(r);
        } else {
          members_to_refresh_ = true;  // asked for while this one was out
        }
      }
      if (!results[i].status) {
        ++stats_.store_errors;
        continue;  // the entries end at their expiry
      }
      auto g = members_.find(group_id);
      if (g == members_.end()) continue;  // forgotten meanwhile (a removal, an epoch)
      std::set<std::string> still(results[i].users.begin(), results[i].users.end());
      for (const std::string& u : users) {
        auto e = g->second.find(u);
        if (e == g->second.end()) continue;  // removed meanwhile: stays removed
        if (still.count(u)) {
          e->second = asked_at + opt_.membership_ttl_ms;
        } else {
          g->second.erase(e);
        }
      }
      if (g->second.empty()) members_.erase(g);
    }
  });
}

bool Node::Impl::needs_lookup(const Session& s, const ClientRequest& request) const {
  return needs_lookup(s.user, request);
}

bool Node::Impl::needs_lookup(const std::string& user, const ClientRequest& request) const {
  if (stores_.executor == nullptr) return false;
  return std::visit(
      [&](const auto& r) -> bool {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, UnsubscribeReq> || std::is_same_v<T, PresenceReq> ||
                      std::is_same_v<T, UnreadReq>) {
          return false;
        } else {
          if constexpr (std::is_same_v<T, SendReq>) {
            // Refused without the store.
            if (!validate_send(user, r)) return false;
          }
          if (!validate_id(r.group_id, "group_id", opt_.limits)) return false;
          if (!member_cached(user, r.group_id)) return true;
          if constexpr (std::is_same_v<T, PullReq>) {
            if (r.fold) return true;  // only the store folds
          }
          if constexpr (std::is_same_v<T, ResumeReq> || std::is_same_v<T, PullReq>) {
            auto g = groups_.find(r.group_id);
            if (g == groups_.end()) return true;
            if constexpr (std::is_same_v<T, ResumeReq>) {  // the client is ahead of this node
              return r.epoch > g->second.epoch || r.after > detector_.known_head(r.group_id);
            } else {
              return r.after < detector_.delivered(r.group_id) && !log_.covers(r.group_id, r.after);
            }
          }
          return false;
        }
      },
      request);
}

void Node::Impl::wait_for_store(Session& s, const ClientRequest& request) {
  if (s.waiting.size() >= opt_.max_waiting_requests) {
    Status st = error(Code::kLimitExceeded,
                      fmt::format("more than {} requests are waiting for the store", opt_.max_waiting_requests));
    std::visit(
        [&](const auto& r) {
          using T = std::decay_t<decltype(r)>;
          if constexpr (std::is_same_v<T, SendReq>) {
            ++stats_.send_errors;
            reply_error(s, r.rid, st, r.group_id, r.client_msg_id);
          } else {
            reply_error(s, r.rid, st, group_of(request));
          }
        },
        request);
    return;
  }
  s.waiting.emplace_back(request);
  if (s.lookup_job == 0 && !s.gated) start_lookup(s);
}

void Node::Impl::ungate(const std::string& user) {
  auto it = user_sessions_.find(user);
  if (it == user_sessions_.end()) return;
  for (SessionId id : it->second) {
    Session& s = sessions_.at(id);
    if (!s.gated) continue;
    s.gated = false;
    if (s.lookup_job == 0) serve_waiting(s);
  }
}

LookupJob Node::Impl::lookup_for(const std::string& user, const ClientRequest& request) {
  LookupJob job{next_job_++, group_of(request), user, 0, 0};
  if (const auto* pull = std::get_if<PullReq>(&request)) {
    job.after = pull->after;
    job.limit = std::min<size_t>(pull->limit, opt_.limits.max_read_limit);
    job.fold = pull->fold;
  }
  if (!member_cached(user, job.group_id)) ++stats_.membership_reads;
  return job;
}

void Node::Impl::start_lookup(Session& s) {
  LookupJob job = lookup_for(s.user, s.waiting.front());
  s.lookup_job = job.id;
  lookups_.emplace(job.id, s.id);
  stores_.executor->lookup(std::move(job));
}

// A host's request outside any session (send_as, read_as, pull) waits for
// its lookup the same way, without a session to queue in: `then` replays it
// with the answer in force.
void Node::Impl::when_ready(const std::string& user, const ClientRequest& request, std::function<void()> then) {
  if (!needs_lookup(user, request) || !validate_id(user, "user_id", opt_.limits)) return then();
  LookupJob job = lookup_for(user, request);
  host_lookups_.emplace(job.id, HostLookup{job.group_id, user, std::move(then)});
  stores_.executor->lookup(std::move(job));
}

void Node::Impl::complete_lookup(uint64_t id, LookupResult result) {
  if (auto h = host_lookups_.find(id); h != host_lookups_.end()) {
    HostLookup waiting = std::move(h->second);
    host_lookups_.erase(h);
    if (!result.status) ++stats_.store_errors;
    LookupJob job{id, waiting.group_id, waiting.user_id, 0, 0};
    answer_job_ = &job;
    answer_ = &result;
    waiting.then();
    answer_job_ = nullptr;
    answer_ = nullptr;
    return;
  }
  auto it = lookups_.find(id);
  if (it == lookups_.end()) return;
  Session* s = session(it->second);
  lookups_.erase(it);
  if (!s || s->lookup_job != id || s->waiting.empty()) return;
  s->lookup_job = 0;
  if (!result.status) ++stats_.store_errors;
  ClientRequest first = s->waiting.front();
  s->waiting.pop_front();
  LookupJob job{id, group_of(first), s->user, 0, 0};
  answer_job_ = &job;
  answer_ = &result;
  dispatch(*s, first);
  answer_job_ = nullptr;
  answer_ = nullptr;
  serve_waiting(*s);
}

void Node::Impl::serve_waiting(Session& s) {
  while (!s.waiting.empty() && !s.gated) {
    if (needs_lookup(s, s.waiting.front())) return start_lookup(s);
    ClientRequest next = s.waiting.front();
    s.waiting.pop_front();
    dispatch(s, next);
  }
  s.waiting.release();  // most sessions wait once, at their start: keep no buffer for it
}

void Node::Impl::dispatch(Session& s, const ClientRequest& request) {
  std::visit([&](const auto& r) { handle(s, r); }, request);
}

const LookupResult* Node::Impl::answer_for(const std::string& group_id, const std::string& user) const {
  if (answer_ == nullptr || answer_job_->group_id != group_id || answer_job_->user_id != user) return nullptr;
  return answer_;
}

Result<GroupHead> Node::Impl::head_of(const std::string& group_id, const std::string& user) {
  if (const LookupResult* a = answer_for(group_id, user)) {
    if (!a->status) return a->status;
    return a->head;
  }
  std::vector<GroupHead> heads;
  if (Status st = stores_.messages.heads({group_id}, &heads); !st) {
    ++stats_.store_errors;
    return st;
  }
  return heads[0];
}

}  // namespace parley
