// parley_node_options and parley_node: a parley::Node whose NodeHost,
// Notifier and Clock are the host's C callbacks, plus the queue of functions
// posted to the node's thread.
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "handle.hpp"
#include "parley/node.hpp"
#include "parley/protocol.hpp"
#include "store.hpp"

using parley::Code;
using parley::SessionId;
using parley::Status;
using parley::capi::Callback;
using parley::capi::Kind;

struct parley_node_options final : parley::capi::Handle {
  static constexpr Kind kKind = Kind::kNodeOptions;
  parley_node_options() : Handle(kKind) {}
  parley::NodeOptions node;
  int codec = PARLEY_CODEC_MSGPACK;
};

namespace {

// Functions posted to a node, shared by the node and the threads posting to
// it (which may outlive it).
class PostQueue {
 public:
  // Queues fn and wakes the node's thread up. Fails, taking nothing, once
  // the node is being destroyed.
  Status push(parley_post_fn fn, void* user_data, parley_free_fn free_user_data) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return parley::error(Code::kClosed, "the parley_node is being destroyed");
    items_.emplace_back(fn, user_data, free_user_data);
    if (wakeup_) wakeup_.fn(wakeup_.user_data);
    return Status::ok();
  }
  std::vector<Callback<parley_post_fn>> take() {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::exchange(items_, {});
  }
  // The previous wakeup callback is freed by the caller, outside the lock.
  Callback<parley_wakeup_fn> set_wakeup(Callback<parley_wakeup_fn> wakeup) {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::exchange(wakeup_, std::move(wakeup));
  }
  // Refuses further posts and drops what is queued (freeing it outside the
  // lock, so a free function may even try to post).
  void close() {
    std::vector<Callback<parley_post_fn>> dropped;
    Callback<parley_wakeup_fn> wakeup;
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    dropped.swap(items_);
    wakeup = std::move(wakeup_);
  }

 private:
  std::mutex mutex_;
  bool closed_ = false;
  std::vector<Callback<parley_post_fn>> items_;
  Callback<parley_wakeup_fn> wakeup_;
};

// The host's C callbacks as the interfaces a Node acts through.
class CallbackHost final : public parley::NodeHost, public parley::Notifier, public parley::Clock {
 public:
  void send_to_session(SessionId session, const std::vector<parley::Frame>& frames) override {
    if (!deliver) return;
    scratch_.clear();
    for (const parley::Frame& f : frames) scratch_.push_back(parley_bytes{f->data(), f->size()});
    deliver.fn(deliver.user_data, session, scratch_.data(), scratch_.size());
  }
  void close_session(SessionId session, const Status& reason) override {
    sessions.erase(session);
    if (close) close.fn(close.user_data, session, static_cast<int>(reason.code()), reason.message().c_str());
  }
  void send_to_node(const std::string& node_id, uint64_t call_id, const parley::Frame& batch) override {
    if (send_batch)
      send_batch.fn(send_batch.user_data, node_id.c_str(), call_id, batch->data(), batch->size());
  }
  void set_timer(int64_t at_ms) override {
    if (timer) timer.fn(timer.user_data, at_ms);
  }
  void notify(const parley::Notification& n) override {
    if (!notify_cb) return;
    const parley_notification c{n.user_id.c_str(),   n.group_id.c_str(), n.epoch,
                                n.msg_id,            n.sender_id.c_str(), n.preview.c_str(),
                                n.preview.size(),    n.reason.c_str(),   n.mentioned ? 1 : 0};
    notify_cb.fn(notify_cb.user_data, &c);
  }
  int64_t now_ms() const override { return clock ? clock.fn(clock.user_data) : system_.now_ms(); }

  Callback<parley_deliver_fn> deliver;
  Callback<parley_close_session_fn> close;
  Callback<parley_send_batch_fn> send_batch;
  Callback<parley_notify_fn> notify_cb;
  Callback<parley_timer_fn> timer;
  Callback<parley_clock_fn> clock;
  std::unordered_set<SessionId> sessions;  // open, as the host knows them

 private:
  std::vector<parley_bytes> scratch_;
  parley::SystemClock system_;
};

std::shared_ptr<const parley::ClientCodec> make_codec(int codec) {
  if (codec == PARLEY_CODEC_JSON) return parley::make_json_codec();
  return parley::make_msgpack_codec();
}

}  // namespace

struct parley_node final : parley::capi::Handle {
  static constexpr Kind kKind = Kind::kNode;
  parley_node(std::shared_ptr<parley::capi::Stores> s, parley::NodeOptions options, int codec)
      : Handle(kKind),
        stores(std::move(s)),
        node(std::make_unique<parley::Node>(std::move(options), stores->node_stores(), host, host, &host,
                                            make_codec(codec))) {}
  // Members go in reverse order: the node before the callbacks it calls,
  // those before the stores. What was posted and not run is dropped first.
  ~parley_node() override { posts->close(); }

  std::shared_ptr<parley::capi::Stores> stores;
  CallbackHost host;
  std::unique_ptr<parley::Node> node;
  std::shared_ptr<PostQueue> posts = std::make_shared<PostQueue>();
  bool started = false;
  bool in_node = false;        // inside a Node call: its callbacks may be running
  bool running_posts = false;  // inside run_posted
};

namespace {

// Sets a flag for the duration of a scope.
class Flag {
 public:
  explicit Flag(bool& flag) : flag_(flag) { flag_ = true; }
  ~Flag() { flag_ = false; }
  Flag(const Flag&) = delete;
  Flag& operator=(const Flag&) = delete;

 private:
  bool& flag_;
};

Status not_from_callback(const parley_node& h) {
  if (!h.in_node) return Status::ok();
  return parley::error(Code::kInvalidArgument,
                       "called from inside a callback of the same node; queue the work and return "
                       "(or use parley_node_post)");
}

// Whether the engine may be called: not from the node's own callbacks, and
// not before parley_node_start.
Status ready(const parley_node& h) {
  if (Status st = not_from_callback(h); !st) return st;
  if (!h.started) return parley::error(Code::kInvalidArgument, "the node is not started (parley_node_start)");
  return Status::ok();
}

// A call into the engine: body(parley_node&) -> Status runs with in_node set.
template <typename F>
int engine_call(const char* fn, parley_node* node, F&& body) {
  return parley::capi::call(fn, node, [&](parley_node& h) -> Status {
    if (Status st = ready(h); !st) return st;
    Flag in_node(h.in_node);
    return body(h);
  });
}

size_t run_posts(parley_node& h) {
  if (h.running_posts) return 0;
  Flag running(h.running_posts);
  std::vector<Callback<parley_post_fn>> batch = h.posts->take();
  for (Callback<parley_post_fn>& posted : batch) {
    posted.fn(&h, posted.user_data);
    posted.reset();
  }
  return batch.size();
}

template <typename Fn>
int set_callback(const char* name, parley_node* node, Callback<Fn> CallbackHost::*member, Fn fn,
                 void* user_data, parley_free_fn free_user_data) {
  return parley::capi::call(name, node, [&](parley_node& h) -> Status {
    if (Status st = not_from_callback(h); !st) return st;
    h.host.*member = Callback<Fn>(fn, user_data, free_user_data);
    return Status::ok();
  });
}

template <typename F>
int set_option(const char* name, parley_node_options* options, F&& body) {
  return parley::capi::call(name, options, [&](parley_node_options& o) -> Status { return body(o.node); });
}

Status check_bytes(const void* data, size_t size) {
  if (data == nullptr && size != 0) return parley::capi::null_argument("data");
  return Status::ok();
}

}  // namespace

extern "C" {

// ---- options ----------------------------------------------------------------

PARLEY_EXPORT int parley_node_options_create(parley_node_options** out) {
  return parley::capi::create("parley_node_options_create", out);
}

PARLEY_EXPORT int parley_node_options_destroy(parley_node_options* options) {
  return parley::capi::release("parley_node_options_destroy", options);
}

PARLEY_EXPORT int parley_node_options_set_node_id(parley_node_options* options, const char* node_id) {
  return set_option("parley_node_options_set_node_id", options, [&](parley::NodeOptions& o) -> Status {
    if (Status st = parley::capi::check_id(node_id, "node_id", o.limits); !st) return st;
    o.node_id = node_id;
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_options_set_codec(parley_node_options* options, int codec) {
  return parley::capi::call("parley_node_options_set_codec", options, [&](parley_node_options& o) -> Status {
    if (codec != PARLEY_CODEC_MSGPACK && codec != PARLEY_CODEC_JSON)
      return parley::error(Code::kInvalidArgument, "unknown codec " + std::to_string(codec));
    o.codec = codec;
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_options_set_forward(parley_node_options* options, int mode, int64_t period_ms) {
  return set_option("parley_node_options_set_forward", options, [&](parley::NodeOptions& o) -> Status {
    if (mode != PARLEY_FORWARD_ADAPTIVE && mode != PARLEY_FORWARD_FIXED)
      return parley::error(Code::kInvalidArgument, "unknown forward mode " + std::to_string(mode));
    if (period_ms < 0) return parley::error(Code::kInvalidArgument, "period_ms must not be negative");
    o.forward.mode = mode == PARLEY_FORWARD_FIXED ? parley::BatchingForwarder::Mode::kFixed
                                                  : parley::BatchingForwarder::Mode::kAdaptive;
    if (period_ms > 0) o.forward.period_ms = period_ms;
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_options_set_limits(parley_node_options* options, uint64_t max_id_bytes,
                                                 uint64_t max_contents_bytes, uint64_t max_batch_messages,
                                                 uint64_t max_read_limit) {
  return set_option("parley_node_options_set_limits", options, [&](parley::NodeOptions& o) -> Status {
    auto keep_or = [](size_t& field, uint64_t value) {
      if (value != 0) field = static_cast<size_t>(value);
    };
    keep_or(o.limits.max_id_bytes, max_id_bytes);
    keep_or(o.limits.max_contents_bytes, max_contents_bytes);
    keep_or(o.limits.max_batch_messages, max_batch_messages);
    keep_or(o.limits.max_read_limit, max_read_limit);
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_options_set_session_queue_bytes(parley_node_options* options, uint64_t bytes) {
  return set_option("parley_node_options_set_session_queue_bytes", options,
                    [&](parley::NodeOptions& o) -> Status {
                      if (bytes == 0) return parley::error(Code::kInvalidArgument, "bytes must be positive");
                      o.session_queue_bytes = static_cast<size_t>(bytes);
                      return Status::ok();
                    });
}

PARLEY_EXPORT int parley_node_options_set_pull_policy(parley_node_options* options, uint64_t min_members,
                                                      double enter_rate, double exit_rate) {
  return set_option("parley_node_options_set_pull_policy", options, [&](parley::NodeOptions& o) -> Status {
    if (!(exit_rate >= 0 && enter_rate > exit_rate))
      return parley::error(Code::kInvalidArgument, "need enter_rate > exit_rate >= 0");
    o.policy.pull_min_members = static_cast<size_t>(min_members);
    o.policy.pull_enter_rate = enter_rate;
    o.policy.pull_exit_rate = exit_rate;
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_options_set_seed(parley_node_options* options, uint64_t seed) {
  return set_option("parley_node_options_set_seed", options, [&](parley::NodeOptions& o) -> Status {
    o.seed = seed;
    return Status::ok();
  });
}

// ---- lifecycle ----------------------------------------------------------------

PARLEY_EXPORT int parley_node_create(const parley_node_options* options, parley_store* store,
                                     parley_node** out) {
  return parley::capi::call_free("parley_node_create", [&]() -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    std::shared_ptr<parley::capi::Stores> stores;
    Status st = parley::capi::with_live(store, Kind::kStore, [&] { stores = store->stores; });
    if (!st) return st;
    parley::NodeOptions o;
    int codec = PARLEY_CODEC_MSGPACK;
    if (options != nullptr) {
      st = parley::capi::with_live(options, Kind::kNodeOptions, [&] {
        o = options->node;
        codec = options->codec;
      });
      if (!st) return st;
    }
    return parley::capi::publish(std::make_unique<parley_node>(std::move(stores), std::move(o), codec), out);
  });
}

PARLEY_EXPORT int parley_node_destroy(parley_node* node) {
  return parley::capi::release("parley_node_destroy", node, [](parley_node& h) -> Status {
    if (h.in_node || h.running_posts) {
      return parley::error(Code::kInvalidArgument,
                           "a node cannot be destroyed from its own callbacks or posted functions");
    }
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_start(parley_node* node) {
  return parley::capi::call("parley_node_start", node, [&](parley_node& h) -> Status {
    if (Status st = not_from_callback(h); !st) return st;
    if (h.started) return parley::error(Code::kInvalidArgument, "the node is already started");
    Flag in_node(h.in_node);
    if (Status st = h.node->start(); !st) return st;
    h.started = true;
    return Status::ok();
  });
}

// ---- callbacks ------------------------------------------------------------------

PARLEY_EXPORT int parley_node_set_deliver(parley_node* node, parley_deliver_fn fn, void* user_data,
                                          parley_free_fn free_user_data) {
  return set_callback("parley_node_set_deliver", node, &CallbackHost::deliver, fn, user_data, free_user_data);
}

PARLEY_EXPORT int parley_node_set_close_session(parley_node* node, parley_close_session_fn fn,
                                                void* user_data, parley_free_fn free_user_data) {
  return set_callback("parley_node_set_close_session", node, &CallbackHost::close, fn, user_data,
                      free_user_data);
}

PARLEY_EXPORT int parley_node_set_send_batch(parley_node* node, parley_send_batch_fn fn, void* user_data,
                                             parley_free_fn free_user_data) {
  return set_callback("parley_node_set_send_batch", node, &CallbackHost::send_batch, fn, user_data,
                      free_user_data);
}

PARLEY_EXPORT int parley_node_set_notify(parley_node* node, parley_notify_fn fn, void* user_data,
                                         parley_free_fn free_user_data) {
  return set_callback("parley_node_set_notify", node, &CallbackHost::notify_cb, fn, user_data,
                      free_user_data);
}

PARLEY_EXPORT int parley_node_set_timer(parley_node* node, parley_timer_fn fn, void* user_data,
                                        parley_free_fn free_user_data) {
  return set_callback("parley_node_set_timer", node, &CallbackHost::timer, fn, user_data, free_user_data);
}

PARLEY_EXPORT int parley_node_set_clock(parley_node* node, parley_clock_fn fn, void* user_data,
                                        parley_free_fn free_user_data) {
  return set_callback("parley_node_set_clock", node, &CallbackHost::clock, fn, user_data, free_user_data);
}

PARLEY_EXPORT int parley_node_set_wakeup(parley_node* node, parley_wakeup_fn fn, void* user_data,
                                         parley_free_fn free_user_data) {
  return parley::capi::call("parley_node_set_wakeup", node, [&](parley_node& h) -> Status {
    if (Status st = not_from_callback(h); !st) return st;
    h.posts->set_wakeup(Callback<parley_wakeup_fn>(fn, user_data, free_user_data));
    return Status::ok();
  });
}

// ---- events ----------------------------------------------------------------------

PARLEY_EXPORT int parley_node_session_open(parley_node* node, uint64_t session, const char* user_id) {
  return engine_call("parley_node_session_open", node, [&](parley_node& h) -> Status {
    if (user_id == nullptr) return parley::capi::null_argument("user_id");
    if (Status st = h.node->open_session(session, user_id); !st) return st;
    h.host.sessions.insert(session);
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_session_close(parley_node* node, uint64_t session, int code,
                                            const char* reason) {
  return engine_call("parley_node_session_close", node, [&](parley_node& h) -> Status {
    if (code < PARLEY_OK || code > PARLEY_ERR_CLOSED)
      return parley::error(Code::kInvalidArgument, "unknown code " + std::to_string(code));
    if (h.host.sessions.erase(session) == 0) return Status::ok();  // closed by the node already
    const Status why =
        code == PARLEY_OK ? Status::ok() : Status(static_cast<Code>(code), reason != nullptr ? reason : "");
    h.node->close_session(session, why);
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_client_request(parley_node* node, uint64_t session, const void* data,
                                             size_t size) {
  return engine_call("parley_node_client_request", node, [&](parley_node& h) -> Status {
    if (Status st = check_bytes(data, size); !st) return st;
    if (h.host.sessions.count(session) == 0)
      return parley::error(Code::kNotFound, "no open session " + std::to_string(session));
    h.node->on_client_frame(session, data, size);
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_session_drained(parley_node* node, uint64_t session, uint64_t bytes) {
  return engine_call("parley_node_session_drained", node, [&](parley_node& h) -> Status {
    h.node->on_session_drained(session, static_cast<size_t>(bytes));
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_peer_batch(parley_node* node, const void* data, size_t size) {
  return engine_call("parley_node_peer_batch", node, [&](parley_node& h) -> Status {
    if (Status st = check_bytes(data, size); !st) return st;
    return h.node->on_peer_batch(data, size);
  });
}

PARLEY_EXPORT int parley_node_peer_result(parley_node* node, const char* node_id, uint64_t call_id, int ok) {
  return engine_call("parley_node_peer_result", node, [&](parley_node& h) -> Status {
    if (node_id == nullptr) return parley::capi::null_argument("node_id");
    h.node->on_peer_result(node_id, call_id, ok != 0);
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_timer_fired(parley_node* node) {
  return engine_call("parley_node_timer_fired", node, [&](parley_node& h) -> Status {
    h.node->on_timer();
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_flush(parley_node* node) {
  return parley::capi::call("parley_node_flush", node, [&](parley_node& h) -> Status {
    if (Status st = ready(h); !st) return st;
    run_posts(h);
    Flag in_node(h.in_node);
    h.node->flush();
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_member_removed(parley_node* node, const char* group_id, const char* user_id) {
  return engine_call("parley_node_member_removed", node, [&](parley_node& h) -> Status {
    if (group_id == nullptr) return parley::capi::null_argument("group_id");
    if (user_id == nullptr) return parley::capi::null_argument("user_id");
    h.node->member_removed(group_id, user_id);
    return Status::ok();
  });
}

PARLEY_EXPORT int parley_node_record_membership(parley_node* node, const char* group_id, int kind,
                                                const char* user_id, const char* subject) {
  return engine_call("parley_node_record_membership", node, [&](parley_node& h) -> Status {
    if (group_id == nullptr) return parley::capi::null_argument("group_id");
    if (user_id == nullptr) return parley::capi::null_argument("user_id");
    if (kind < PARLEY_ENTRY_JOIN || kind > PARLEY_ENTRY_REMOVED) {
      return parley::error(Code::kInvalidArgument,
                           "kind " + std::to_string(kind) + " is not PARLEY_ENTRY_JOIN, _LEAVE or _REMOVED");
    }
    return h.node->record_membership(group_id, static_cast<parley::EntryKind>(kind), user_id,
                                     subject == nullptr ? "" : subject);
  });
}

PARLEY_EXPORT int parley_node_record_system(parley_node* node, const char* group_id, const char* author,
                                            const char* client_msg_id, const char* text, const char* meta_json) {
  return engine_call("parley_node_record_system", node, [&](parley_node& h) -> Status {
    if (group_id == nullptr) return parley::capi::null_argument("group_id");
    if (author == nullptr) return parley::capi::null_argument("author");
    if (text == nullptr) return parley::capi::null_argument("text");
    return h.node->record_system(group_id, author, client_msg_id == nullptr ? "" : client_msg_id, text,
                                 meta_json == nullptr ? "" : meta_json);
  });
}

PARLEY_EXPORT int parley_node_session_count(parley_node* node, size_t* out) {
  return parley::capi::call("parley_node_session_count", node, [&](parley_node& h) -> Status {
    if (out == nullptr) return parley::capi::null_argument("out");
    *out = h.node->session_count();
    return Status::ok();
  });
}

// ---- posting ----------------------------------------------------------------------

PARLEY_EXPORT int parley_node_post(parley_node* node, parley_post_fn fn, void* user_data,
                                   parley_free_fn free_user_data) {
  // Thread-safe: touches the node only under the handle table's lock (to
  // reach its queue) and never writes the node's message.
  return parley::capi::call_free("parley_node_post", [&]() -> Status {
    if (fn == nullptr) return parley::capi::null_argument("fn");
    std::shared_ptr<PostQueue> queue;
    Status st = parley::capi::with_live(node, Kind::kNode, [&] { queue = node->posts; });
    if (!st) return st;
    return queue->push(fn, user_data, free_user_data);
  });
}

PARLEY_EXPORT int parley_node_run_posted(parley_node* node, size_t* ran) {
  return parley::capi::call("parley_node_run_posted", node, [&](parley_node& h) -> Status {
    if (Status st = not_from_callback(h); !st) return st;
    const size_t n = run_posts(h);
    if (ran != nullptr) *ran = n;
    return Status::ok();
  });
}

}  // extern "C"
