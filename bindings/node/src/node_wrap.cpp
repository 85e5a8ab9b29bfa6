#include "node_wrap.hpp"

#include <chrono>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "store_wrap.hpp"

namespace parley::addon {

// Registered with parley_node_set_wakeup; owned by the library.
struct NodeWrap::WakeupData {
  NodeWrap* owner;
  WakeupFn fn;
};

// A function posted from JavaScript: index.js's id for it.
struct NodeWrap::JsPost {
  NodeWrap* owner;
  double id;
};

namespace {

bool has(const Napi::Object& o, const char* key) {
  return o.Has(key) && !o.Get(key).IsUndefined();
}

// o[key] as an array of exactly n elements (index.js builds these).
bool get_tuple(Napi::Env env, const Napi::Object& o, const char* key, uint32_t n, Napi::Array* out) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray() || v.As<Napi::Array>().Length() != n) {
    throw_type_error(env, std::string(key) + " must be an array of " + std::to_string(n) + " numbers");
    return false;
  }
  *out = v.As<Napi::Array>();
  return true;
}

}  // namespace

void call_wakeup(Napi::Env env, Napi::Function, Waker* waker, void*) {
  if (env == nullptr || waker == nullptr) return;
  waker->pending.store(false);
  if (waker->owner != nullptr) waker->owner->on_wakeup(env);
}

Napi::Function NodeWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeNode",
                     {
                         member_method<NodeWrap, &NodeWrap::start>("start"),
                         member_method<NodeWrap, &NodeWrap::close>("close"),
                         member_getter<NodeWrap, &NodeWrap::closed>("closed"),
                         member_method<NodeWrap, &NodeWrap::session_open>("sessionOpen"),
                         member_method<NodeWrap, &NodeWrap::session_close>("sessionClose"),
                         member_method<NodeWrap, &NodeWrap::client_request>("clientRequest"),
                         member_method<NodeWrap, &NodeWrap::session_drained>("sessionDrained"),
                         member_method<NodeWrap, &NodeWrap::peer_batch>("peerBatch"),
                         member_method<NodeWrap, &NodeWrap::peer_result>("peerResult"),
                         member_method<NodeWrap, &NodeWrap::timer_fired>("timerFired"),
                         member_method<NodeWrap, &NodeWrap::flush>("flush"),
                         member_method<NodeWrap, &NodeWrap::member_removed>("memberRemoved"),
                         member_method<NodeWrap, &NodeWrap::record_membership>("recordMembership"),
                         member_method<NodeWrap, &NodeWrap::record_system>("recordSystem"),
                         member_method<NodeWrap, &NodeWrap::session_count>("sessionCount"),
                         member_method<NodeWrap, &NodeWrap::post>("post"),
                         member_method<NodeWrap, &NodeWrap::run_posted>("runPosted"),
                     });
}

NodeWrap::NodeWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NodeWrap>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsObject() || !info[2].IsArray() || !info[3].IsFunction()) {
    throw_type_error(env, "NativeNode(store, options, events, onWakeup)");
    return;
  }
  StoreWrap* store = StoreWrap::unwrap(env, info[0]);
  if (store == nullptr) return;
  if (store->handle() == nullptr) {
    throw_error(env, PARLEY_ERR_CLOSED, "the Store is closed");
    return;
  }
  events_ = Napi::Weak(info[2].As<Napi::Object>());
  on_wakeup_ = Napi::Weak(info[3].As<Napi::Function>());
  if (!setup(env, info[1].As<Napi::Object>(), store->handle())) return;
  if (!register_callbacks(env) || !register_wakeup(env)) {
    destroy();
    return;
  }
  // Registered after the thread-safe function's own hook, so it runs first.
  hooked_ = napi_add_env_cleanup_hook(env, &NodeWrap::cleanup, this) == napi_ok;
}

NodeWrap::~NodeWrap() {
  destroy();
}

bool NodeWrap::setup(Napi::Env env, const Napi::Object& o, parley_store* store) {
  parley_node_options* options = nullptr;
  if (!check(env, parley_node_options_create(&options), nullptr)) return false;
  std::unique_ptr<parley_node_options, int (*)(parley_node_options*)> guard(options,
                                                                            parley_node_options_destroy);
  auto ok = [&](int rc) { return check(env, rc, options); };
  if (has(o, "nodeId")) {
    std::string id;
    if (!get_string(env, o.Get("nodeId"), "nodeId", &id) ||
        !ok(parley_node_options_set_node_id(options, id.c_str())))
      return false;
  }
  if (has(o, "codec")) {
    int64_t codec = 0;
    if (!get_i64(env, o.Get("codec"), "codec", &codec) ||
        !ok(parley_node_options_set_codec(options, static_cast<int>(codec))))
      return false;
    json_ = codec == PARLEY_CODEC_JSON;
  } else {
    json_ = false;  // the C API's default codec, msgpack
  }
  if (has(o, "forwardMode")) {
    int64_t mode = 0;
    int64_t period = 0;
    if (!get_i64(env, o.Get("forwardMode"), "forwardMode", &mode)) return false;
    if (has(o, "forwardPeriodMs") && !get_i64(env, o.Get("forwardPeriodMs"), "forwardPeriodMs", &period))
      return false;
    if (!ok(parley_node_options_set_forward(options, static_cast<int>(mode), period))) return false;
  }
  if (has(o, "limits")) {
    Napi::Array a;
    uint64_t l[4];
    if (!get_tuple(env, o, "limits", 4, &a)) return false;
    for (uint32_t i = 0; i < 4; ++i) {
      if (!get_u64(env, a.Get(i), "limits", &l[i])) return false;
    }
    if (!ok(parley_node_options_set_limits(options, l[0], l[1], l[2], l[3]))) return false;
  }
  if (has(o, "sessionQueueBytes")) {
    uint64_t bytes = 0;
    if (!get_u64(env, o.Get("sessionQueueBytes"), "sessionQueueBytes", &bytes) ||
        !ok(parley_node_options_set_session_queue_bytes(options, bytes)))
      return false;
  }
  if (has(o, "pullPolicy")) {
    Napi::Array a;
    if (!get_tuple(env, o, "pullPolicy", 3, &a)) return false;
    uint64_t min_members = 0;
    double enter = 0;
    double exit = 0;
    if (!get_u64(env, a.Get(0u), "pullPolicy.minMembers", &min_members) ||
        !get_double(env, a.Get(1u), "pullPolicy.enterRate", &enter) ||
        !get_double(env, a.Get(2u), "pullPolicy.exitRate", &exit) ||
        !ok(parley_node_options_set_pull_policy(options, min_members, enter, exit)))
      return false;
  }
  if (has(o, "seed")) {
    uint64_t seed = 0;
    if (!get_u64(env, o.Get("seed"), "seed", &seed) || !ok(parley_node_options_set_seed(options, seed)))
      return false;
  }
  if (has(o, "clock")) {
    if (!o.Get("clock").IsFunction()) {
      throw_type_error(env, "clock must be a function returning milliseconds");
      return false;
    }
    clock_ = Napi::Persistent(o.Get("clock").As<Napi::Function>());
  }
  return check(env, parley_node_create(options, store, &node_), nullptr);
}

bool NodeWrap::register_callbacks(Napi::Env env) {
  auto ok = [&](int rc) { return check(env, rc, node_); };
  if (!ok(parley_node_set_deliver(node_, &NodeWrap::on_deliver, this, nullptr)) ||
      !ok(parley_node_set_close_session(node_, &NodeWrap::on_close_session, this, nullptr)) ||
      !ok(parley_node_set_send_batch(node_, &NodeWrap::on_send_batch, this, nullptr)) ||
      !ok(parley_node_set_notify(node_, &NodeWrap::on_notify, this, nullptr)) ||
      !ok(parley_node_set_timer(node_, &NodeWrap::on_timer, this, nullptr)))
    return false;
  if (!clock_.IsEmpty() && !ok(parley_node_set_clock(node_, &NodeWrap::on_clock, this, nullptr)))
    return false;
  return true;
}

bool NodeWrap::register_wakeup(Napi::Env env) {
  auto* waker = new Waker();
  waker->owner = this;
  ++g_live_objects;
  wakeup_ = WakeupFn::New(
      env, "parley wakeup", 0, 1, waker,
      [](Napi::Env, void*, Waker* w) {
        if (w->owner != nullptr) w->owner->on_wakeup_finalized();
        delete w;
        --g_live_objects;
      },
      static_cast<void*>(nullptr));
  if (env.IsExceptionPending()) {
    delete waker;
    --g_live_objects;
    return false;
  }
  waker_ = waker;
  wakeup_alive_ = true;
  // An idle node does not keep the process alive; a pending post() does.
  wakeup_.Unref(env);
  auto* data = new WakeupData{this, wakeup_};
  ++g_live_objects;
  const int rc = parley_node_set_wakeup(node_, &NodeWrap::on_wakeup_signal, data, &NodeWrap::free_wakeup);
  if (rc != PARLEY_OK) {  // a failed registration takes nothing
    free_wakeup(data);
    return check(env, rc, node_);
  }
  return true;
}

void NodeWrap::on_wakeup_signal(void* data) {
  auto* d = static_cast<WakeupData*>(data);
  // The Waker lives until the thread-safe function is finalized, which
  // cannot happen while this registration (which holds it) exists.
  Waker* w = d->fn.GetContext();
  if (!w->pending.exchange(true)) d->fn.NonBlockingCall();
}

void NodeWrap::free_wakeup(void* data) {
  auto* d = static_cast<WakeupData*>(data);
  if (d->owner->wakeup_alive_) d->fn.Release();
  delete d;
  --g_live_objects;
}

void NodeWrap::on_wakeup_finalized() {
  wakeup_alive_ = false;
  waker_ = nullptr;
  // No thread may signal a finalized function: unregister (frees the data).
  if (node_ != nullptr) (void)parley_node_set_wakeup(node_, nullptr, nullptr, nullptr);
}

void NodeWrap::on_wakeup(Napi::Env env) {
  if (node_ == nullptr || !can_call_js(env)) return;
  Napi::HandleScope scope(env);
  Napi::Value fn = on_wakeup_.Value();
  if (!fn.IsEmpty() && fn.IsFunction()) call_function(env, env.Undefined(), fn, 0, nullptr);
}

void NodeWrap::destroy() {
  if (node_ == nullptr) return;
  closing_ = true;
  if (parley_node_destroy(node_) != PARLEY_OK) {  // only from inside a callback (the clock)
    closing_ = false;
    return;
  }
  node_ = nullptr;
  if (waker_ != nullptr) waker_->owner = nullptr;
  clock_.Reset();
  if (hooked_) {
    hooked_ = false;
    napi_remove_env_cleanup_hook(env_, &NodeWrap::cleanup, this);
  }
}

void NodeWrap::cleanup(void* self) {
  auto* w = static_cast<NodeWrap*>(self);
  w->hooked_ = false;  // the hook is spent: nothing to remove
  w->destroy();
}

void NodeWrap::push_event(Napi::Env env, std::initializer_list<napi_value> items) {
  if (env.IsExceptionPending()) return;  // the clock threw: the call is failing
  Napi::Value v = events_.Value();
  if (v.IsEmpty() || !v.IsArray()) return;
  Napi::Array events = v.As<Napi::Array>();
  Napi::Array ev = Napi::Array::New(env, items.size());
  uint32_t i = 0;
  for (napi_value item : items) ev.Set(i++, Napi::Value(env, item));
  events.Set(events.Length(), ev);
}

// ---- the C callbacks (on the JavaScript thread, inside a method) ----------

void NodeWrap::on_deliver(void* self, uint64_t session, const parley_bytes* frames, size_t count) {
  auto* w = static_cast<NodeWrap*>(self);
  Napi::Env env = w->env_;
  Napi::HandleScope scope(env);
  Napi::Array list = Napi::Array::New(env, count);
  double bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    const auto* data = static_cast<const char*>(frames[i].data);
    if (w->json_) {
      list.Set(static_cast<uint32_t>(i), Napi::String::New(env, data, frames[i].size));
    } else {
      list.Set(static_cast<uint32_t>(i),
               Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(data), frames[i].size));
    }
    bytes += static_cast<double>(frames[i].size);
  }
  w->push_event(
      env, {Napi::String::New(env, "deliver"), from_u64(env, session), list, Napi::Number::New(env, bytes)});
}

void NodeWrap::on_close_session(void* self, uint64_t session, int code, const char* message) {
  auto* w = static_cast<NodeWrap*>(self);
  Napi::Env env = w->env_;
  Napi::HandleScope scope(env);
  w->push_event(env, {Napi::String::New(env, "close"), from_u64(env, session), Napi::Number::New(env, code),
                      Napi::String::New(env, message != nullptr ? message : "")});
}

void NodeWrap::on_send_batch(void* self, const char* node_id, uint64_t call_id, const void* data,
                             size_t size) {
  auto* w = static_cast<NodeWrap*>(self);
  Napi::Env env = w->env_;
  Napi::HandleScope scope(env);
  w->push_event(env,
                {Napi::String::New(env, "batch"), Napi::String::New(env, node_id), from_u64(env, call_id),
                 Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(data), size)});
}

void NodeWrap::on_notify(void* self, const parley_notification* n) {
  auto* w = static_cast<NodeWrap*>(self);
  Napi::Env env = w->env_;
  Napi::HandleScope scope(env);
  Napi::Object o = Napi::Object::New(env);
  o.Set("userId", n->user_id);
  o.Set("groupId", n->group_id);
  o.Set("epoch", from_u64(env, n->epoch));
  o.Set("msgId", from_u64(env, n->msg_id));
  o.Set("senderId", n->sender_id);
  o.Set("preview", Napi::String::New(env, n->preview, n->preview_size));
  o.Set("reason", n->reason);
  o.Set("mentioned", Napi::Boolean::New(env, n->mentioned != 0));
  w->push_event(env, {Napi::String::New(env, "notify"), o});
}

void NodeWrap::on_timer(void* self, int64_t at_ms) {
  auto* w = static_cast<NodeWrap*>(self);
  Napi::Env env = w->env_;
  Napi::HandleScope scope(env);
  w->push_event(env, {Napi::String::New(env, "timer"), Napi::Number::New(env, static_cast<double>(at_ms))});
}

int64_t NodeWrap::on_clock(void* self) {
  auto* w = static_cast<NodeWrap*>(self);
  Napi::Env env = w->env_;
  if (env.IsExceptionPending() || w->clock_.IsEmpty()) return w->last_clock_;
  Napi::HandleScope scope(env);
  napi_value result = call_function(env, env.Undefined(), w->clock_.Value(), 0, nullptr);
  if (result == nullptr || env.IsExceptionPending()) return w->last_clock_;
  const Napi::Value now(env, result);
  if (!now.IsNumber()) {
    throw_type_error(env, "the clock function must return a number (milliseconds)");
    return w->last_clock_;
  }
  w->last_clock_ = now.As<Napi::Number>().Int64Value();
  return w->last_clock_;
}

void NodeWrap::on_post(parley_node*, void* item) {
  auto* p = static_cast<JsPost*>(item);
  Napi::Env env = p->owner->env_;
  Napi::HandleScope scope(env);
  p->owner->push_event(env, {Napi::String::New(env, "posted"), Napi::Number::New(env, p->id)});
}

void NodeWrap::free_post(void* item) {
  auto* p = static_cast<JsPost*>(item);
  NodeWrap* w = p->owner;
  // While closing (perhaps from the garbage collector) the thread-safe
  // function is being released: leave it alone.
  if (--w->js_posts_ == 0 && !w->closing_ && w->wakeup_alive_) w->wakeup_.Unref(w->env_);
  delete p;
  --g_live_objects;
}

// ---- methods ----------------------------------------------------------------

bool NodeWrap::open(Napi::Env env) {
  if (node_ != nullptr) return true;
  throw_error(env, PARLEY_ERR_CLOSED, "the Node is closed");
  return false;
}

Napi::Value NodeWrap::start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (open(env)) check(env, parley_node_start(node_), node_);
  return env.Undefined();
}

Napi::Value NodeWrap::close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (node_ == nullptr) return env.Undefined();
  parley_node* node = node_;
  destroy();
  if (node_ != nullptr) check(env, PARLEY_ERR_INVALID_ARGUMENT, node);
  return env.Undefined();
}

Napi::Value NodeWrap::closed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), node_ == nullptr);
}

Napi::Value NodeWrap::session_open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t session = 0;
  std::string user;
  if (open(env) && get_u64(env, info[0], "session", &session) && get_string(env, info[1], "userId", &user))
    check(env, parley_node_session_open(node_, session, user.c_str()), node_);
  return env.Undefined();
}

Napi::Value NodeWrap::session_close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t session = 0;
  int64_t code = 0;
  std::string reason;
  if (!open(env) || !get_u64(env, info[0], "session", &session) || !get_i64(env, info[1], "code", &code))
    return env.Undefined();
  const bool has_reason = info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull();
  if (has_reason && !get_string(env, info[2], "reason", &reason)) return env.Undefined();
  check(env,
        parley_node_session_close(node_, session, static_cast<int>(code),
                                  has_reason ? reason.c_str() : nullptr),
        node_);
  return env.Undefined();
}

Napi::Value NodeWrap::client_request(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t session = 0;
  if (!open(env) || !get_u64(env, info[0], "session", &session)) return env.Undefined();
  if (info[1].IsString()) {
    const std::string frame = info[1].As<Napi::String>().Utf8Value();
    check(env, parley_node_client_request(node_, session, frame.data(), frame.size()), node_);
    return env.Undefined();
  }
  const void* data = nullptr;
  size_t size = 0;
  if (get_bytes(env, info[1], "frame", &data, &size))
    check(env, parley_node_client_request(node_, session, data, size), node_);
  return env.Undefined();
}

Napi::Value NodeWrap::session_drained(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t session = 0;
  uint64_t bytes = 0;
  if (open(env) && get_u64(env, info[0], "session", &session) && get_u64(env, info[1], "bytes", &bytes))
    check(env, parley_node_session_drained(node_, session, bytes), node_);
  return env.Undefined();
}

Napi::Value NodeWrap::peer_batch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const void* data = nullptr;
  size_t size = 0;
  if (open(env) && get_bytes(env, info[0], "data", &data, &size))
    check(env, parley_node_peer_batch(node_, data, size), node_);
  return env.Undefined();
}

Napi::Value NodeWrap::peer_result(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string node_id;
  uint64_t call_id = 0;
  if (open(env) && get_string(env, info[0], "nodeId", &node_id) && get_u64(env, info[1], "callId", &call_id))
    check(env, parley_node_peer_result(node_, node_id.c_str(), call_id, info[2].ToBoolean().Value() ? 1 : 0),
          node_);
  return env.Undefined();
}

Napi::Value NodeWrap::timer_fired(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (open(env)) check(env, parley_node_timer_fired(node_), node_);
  return env.Undefined();
}

Napi::Value NodeWrap::flush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (open(env)) check(env, parley_node_flush(node_), node_);
  return env.Undefined();
}

Napi::Value NodeWrap::member_removed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string group;
  std::string user;
  if (open(env) && get_string(env, info[0], "groupId", &group) && get_string(env, info[1], "userId", &user))
    check(env, parley_node_member_removed(node_, group.c_str(), user.c_str()), node_);
  return env.Undefined();
}

// recordMembership(groupId, kind, userId, subject?) with kind a PARLEY_ENTRY_* number.
Napi::Value NodeWrap::record_membership(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string group;
  std::string user;
  std::string subject;
  int64_t kind = 0;
  const bool has_subject = info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull();
  if (!open(env) || !get_string(env, info[0], "groupId", &group) || !get_i64(env, info[1], "kind", &kind) ||
      !get_string(env, info[2], "userId", &user) || (has_subject && !get_string(env, info[3], "subject", &subject)))
    return env.Undefined();
  check(env,
        parley_node_record_membership(node_, group.c_str(), static_cast<int>(kind), user.c_str(),
                                      has_subject ? subject.c_str() : nullptr),
        node_);
  return env.Undefined();
}

// recordSystem(groupId, author, text, cid | null, metaJson | null)
Napi::Value NodeWrap::record_system(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string group, author, text, cid, meta;
  const bool has_cid = info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull();
  const bool has_meta = info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsNull();
  if (!open(env) || !get_string(env, info[0], "groupId", &group) || !get_string(env, info[1], "author", &author) ||
      !get_string(env, info[2], "text", &text) || (has_cid && !get_string(env, info[3], "cid", &cid)) ||
      (has_meta && !get_string(env, info[4], "meta", &meta)))
    return env.Undefined();
  check(env,
        parley_node_record_system(node_, group.c_str(), author.c_str(), has_cid ? cid.c_str() : nullptr, text.c_str(),
                                  has_meta ? meta.c_str() : nullptr),
        node_);
  return env.Undefined();
}

Napi::Value NodeWrap::session_count(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t count = 0;
  if (!open(env) || !check(env, parley_node_session_count(node_, &count), node_)) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(count));
}

Napi::Value NodeWrap::post(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double id = 0;
  if (!open(env) || !get_double(env, info[0], "id", &id)) return env.Undefined();
  auto* item = new JsPost{this, id};
  ++g_live_objects;
  const int rc = parley_node_post(node_, &NodeWrap::on_post, item, &NodeWrap::free_post);
  if (rc != PARLEY_OK) {  // a failed post takes nothing
    delete item;
    --g_live_objects;
    check(env, rc, nullptr);
    return env.Undefined();
  }
  if (js_posts_++ == 0 && wakeup_alive_) wakeup_.Ref(env);
  return env.Undefined();
}

Napi::Value NodeWrap::run_posted(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t ran = 0;
  if (!open(env) || !check(env, parley_node_run_posted(node_, &ran), node_)) return env.Undefined();
  return Napi::Number::New(env, static_cast<double>(ran));
}

// ---- testing: posts from another thread ------------------------------------

namespace {

std::atomic<int64_t> g_thread_ran{0};
std::atomic<int64_t> g_thread_freed{0};

class PostFromThread final : public Napi::AsyncWorker {
 public:
  PostFromThread(Napi::Env env, parley_node* node, int64_t count)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), node_(node), count_(count) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    for (int64_t i = 0; i < count_; ++i) {
      ++g_live_objects;
      const int rc = parley_node_post(
          node_, [](parley_node*, void*) { ++g_thread_ran; }, nullptr,
          [](void*) {
            ++g_thread_freed;
            --g_live_objects;
          });
      if (rc == PARLEY_OK) {
        ++posted_;
      } else {
        --g_live_objects;
        ++refused_;
      }
      if (i % 64 == 63) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!can_call_js(env)) return;
    Napi::Object r = Napi::Object::New(env);
    r.Set("posted", Napi::Number::New(env, static_cast<double>(posted_)));
    r.Set("refused", Napi::Number::New(env, static_cast<double>(refused_)));
    deferred_.Resolve(r);
  }
  void OnError(const Napi::Error& e) override {
    if (can_call_js(Env())) deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  parley_node* node_;  // posted to without a look at its wrapper: a closed one answers closed
  int64_t count_;
  int64_t posted_ = 0;
  int64_t refused_ = 0;
};

}  // namespace

Napi::Value post_from_thread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(addon_data(env).node_class.Value())) {
    throw_type_error(env, "postFromThread(nativeNode, count)");
    return env.Undefined();
  }
  NodeWrap* node = NodeWrap::Unwrap(info[0].As<Napi::Object>());  // null while a worker is terminated
  int64_t count = 0;
  if (node == nullptr || !get_i64(env, info[1], "count", &count)) return env.Undefined();
  if (node->handle() == nullptr) {
    throw_error(env, PARLEY_ERR_CLOSED, "the Node is closed");
    return env.Undefined();
  }
  auto* worker = new PostFromThread(env, node->handle(), count);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value thread_posts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  r.Set("ran", Napi::Number::New(env, static_cast<double>(g_thread_ran.load())));
  r.Set("freed", Napi::Number::New(env, static_cast<double>(g_thread_freed.load())));
  return r;
}

}  // namespace parley::addon
