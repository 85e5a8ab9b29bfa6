// Node: the public face; the engine is Node::Impl (node_impl.hpp).
#include "parley/node.hpp"

#include "core/node_impl.hpp"

namespace parley {


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
void Node::report_previous_failure(SessionId session, const Status& reason) {
  if (Session* s = impl_->session(session)) impl_->report_previous_failure(*s, reason);
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

size_t Node::disconnect_user(const std::string& user_id, const std::string& why) {
  return impl_->disconnect_user(user_id, why);
}

void Node::end_session(SessionId session, const Status& reason, const std::string& about) {
  impl_->end_session(session, reason, about);
}

void Node::member_removed(const std::string& group_id, const std::string& user_id) {
  impl_->member_removed(group_id, user_id);
}
Status Node::record_system(const std::string& group_id, const std::string& author, const std::string& client_msg_id,
                           const std::string& text, const std::string& meta, RequestDone done) {
  return impl_->record_system(group_id, author, client_msg_id, text, meta, std::move(done));
}

Status Node::record_membership(const std::string& group_id, EntryKind kind, const std::string& user_id,
                               const std::string& subject) {
  return impl_->record_membership(group_id, kind, user_id, subject);
}
void Node::send_as(const std::string& user_id, const SendReq& request, RequestDone done) {
  impl_->send_as(user_id, request, std::move(done));
}
void Node::read_as(const std::string& user_id, const ReadReq& request, RequestDone done) {
  impl_->read_as(user_id, request, std::move(done));
}
void Node::on_append_done(uint64_t job, const Status& status, std::vector<AppendOutcome> outcomes) {
  impl_->complete_append(job, status, std::move(outcomes));
}
void Node::on_read_done(uint64_t job, ReadResult result) {
  impl_->complete_read(job, std::move(result));
}
size_t Node::appends_in_flight() const {
  return impl_->in_flight_.size();
}
size_t Node::reads_in_flight() const {
  return impl_->reads_.size();
}
void Node::on_lookup_done(uint64_t job, LookupResult result) {
  impl_->complete_lookup(job, std::move(result));
}
size_t Node::lookups_in_flight() const {
  return impl_->lookups_.size() + impl_->host_lookups_.size();
}
void Node::when_ready(const std::string& user_id, const ClientRequest& request, std::function<void()> then) {
  impl_->when_ready(user_id, request, std::move(then));
}
void Node::run_host(HostWork work, std::function<void(const Status&)> done) {
  impl_->submit({HostOp{std::move(work)}},
                [done = std::move(done)](std::vector<StoreOpResult>& results) { done(results[0].status); });
}
void Node::on_store_done(uint64_t job, std::vector<StoreOpResult> results) {
  impl_->complete_store_job(job, std::move(results));
}
size_t Node::store_jobs_in_flight() const {
  return impl_->store_jobs_.size();
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
  std::vector<PresenceStatus> stored;  // the local users' entries are not used
  if (impl_->stores_.presence != nullptr) {
    if (Status st = impl_->stores_.presence->presence(user_ids, impl_->clock_.now_ms(), &stored); !st) {
      ++impl_->stats_.store_errors;
      return st;
    }
  }
  return presence_of(user_ids, stored);
}

// Connected here, or leaving here with the store not told yet: this node's
// own state is the answer.
std::vector<PresenceStatus> Node::presence_of(const std::vector<std::string>& user_ids,
                                              const std::vector<PresenceStatus>& stored) const {
  std::vector<PresenceStatus> out(user_ids.size());
  for (size_t i = 0; i < user_ids.size(); ++i) {
    const bool local = impl_->user_sessions_.count(user_ids[i]) != 0 || impl_->erasing_.count(user_ids[i]) != 0;
    out[i] = local || stored.size() != user_ids.size() ? impl_->presence_.status(user_ids[i], impl_->clock_.now_ms())
                                                       : stored[i];
  }
  return out;
}

PresenceStatus Node::presence_of(const std::string& user_id) const {
  return impl_->presence_.status(user_id, impl_->clock_.now_ms());
}

}  // namespace parley
