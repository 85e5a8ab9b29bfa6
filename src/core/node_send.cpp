// Node::Impl: The send pipeline: the turn, group commits handed to the executor (or
// appended inline) and their completions.
#include "core/node_impl.hpp"

namespace parley {

void Node::Impl::flush() {
  commit_pending();
  run_catch_ups();
  pump_sessions();
  run_resyncs();
  send_hints();
  cut_off_behind();
  write_outboxes();
  send_writes();  // before the routes: a route read sees this turn's directory writes
  ask_routes();
  send_refreshes();
  arm_timer();
}

void Node::Impl::commit_pending() {
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
  Status st = run_append(stores_.messages, &stores_.membership, job.requests, &outcomes);
  complete_append(id, st, std::move(outcomes));
}

Status Node::Impl::record_membership(const std::string& group_id, EntryKind kind, const std::string& user_id,
                                     const std::string& subject) {
  if (!is_membership(kind)) {
    return error(Code::kInvalidArgument, fmt::format("{} is not a membership change", entry_kind_name(kind)));
  }
  AppendRequest a;
  a.group_id = group_id;
  a.user_id = user_id;
  a.contents = subject;
  a.timestamp_ms = clock_.now_ms();
  a.entry.kind = kind;
  if (Status st = validate_submission(group_id, user_id, "", subject, opt_.limits); !st) return st;
  if (Status st = validate_entry(a.entry, subject, opt_.limits); !st) return st;
  pending_.push_back(PendingSend{0, 0, "", group_id, nullptr});  // answered to nobody
  pending_requests_.push_back(std::move(a));
  return Status::ok();
}

Status Node::Impl::record_system(const std::string& group_id, const std::string& author,
                                 const std::string& client_msg_id, const std::string& text,
                                 const std::string& meta, Node::RequestDone done) {
  AppendRequest a;
  a.group_id = group_id;
  a.user_id = author;
  a.client_msg_id = client_msg_id;
  a.contents = text;
  a.timestamp_ms = clock_.now_ms();
  a.entry.kind = EntryKind::kSystem;
  a.entry.meta = meta;
  if (Status st = validate_submission(group_id, author, client_msg_id, text, opt_.limits); !st) return st;
  if (Status st = validate_entry(a.entry, text, opt_.limits); !st) return st;
  pending_.push_back(PendingSend{0, 0, client_msg_id, group_id, std::move(done)});  // answered to `done` only
  pending_requests_.push_back(std::move(a));
  return Status::ok();
}

void Node::Impl::complete_append(uint64_t id, const Status& st, std::vector<AppendOutcome> outcomes) {
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
    if (!o.status) {  // the log's rules refused it (not the sender's message, deleted...)
      answer_error(batch[i], o.status);
      continue;
    }
    const AckEv ack{batch[i].rid,           o.message.group_id, batch[i].client_msg_id, o.message.msg_id,
                    o.message.timestamp_ms, o.duplicate,        o.message.epoch};
    if (batch[i].done) {
      ++stats_.acks;
      batch[i].done(ack);
    } else if (Session* s = session(batch[i].session)) {
      ++stats_.acks;
      queue_event(*s, ack);
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

void Node::Impl::complete_append_failed(const std::vector<PendingSend>& batch, const Status& st) {
  ++stats_.store_errors;
  for (const PendingSend& p : batch) answer_error(p, st);
}

// A send's error, to its session or its RequestDone.
void Node::Impl::answer_error(const PendingSend& p, const Status& st) {
  if (p.done) {
    ++stats_.send_errors;
    p.done(ErrorEv{p.rid, st.code(), st.message(), p.group_id, p.client_msg_id});
  } else if (Session* s = session(p.session)) {
    ++stats_.send_errors;
    reply_error(*s, p.rid, st, p.group_id, p.client_msg_id);
  }
}

void Node::Impl::on_committed(const MessagePtr& m, std::vector<NotifyCandidate>* candidates) {
  const Route* route = route_for(m->group_id);
  if (!route && stores_.executor != nullptr) {
    // Forwarded and notified when the route comes back (release_unrouted).
    Unrouted& waiting = unrouted_[m->group_id];
    waiting.items.push_back(std::make_shared<const std::string>(detail::encode_message_item(*m)));
    if (notifier_ && m->entry.kind == EntryKind::kMessage) waiting.messages.push_back(m);
  } else if (route) {
    if (!route->nodes.empty()) {
      Frame item = std::make_shared<const std::string>(detail::encode_message_item(*m));
      const int64_t now = clock_.now_ms();
      for (const std::string& n : route->nodes) forwarder_.enqueue(n, item, now);
    }
    offline_candidates(m, *route, candidates);
  }
  accept(m);
}

void Node::Impl::offline_candidates(const MessagePtr& m, const Route& route,
                                    std::vector<NotifyCandidate>* candidates) {
  if (!notifier_ || m->entry.kind != EntryKind::kMessage) return;  // edits, deletes, reactions notify nobody
  NotifyCandidate c{m, {}};
  for (const std::string& u : route.offline_members) {
    if (u != m->user_id) c.users.push_back(u);
  }
  if (!c.users.empty()) candidates->push_back(std::move(c));
}

}  // namespace parley
