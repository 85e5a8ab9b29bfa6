// NodeWrap: a parley_node driven from the JavaScript thread (index.js's
// Node class is the public face).
//
// Threads. The node's thread is the JavaScript thread: every method runs
// there, and so does every callback of the node (convention 5 of parley.h),
// inside the method that caused it. Those callbacks do not call JavaScript:
// they copy their data into JavaScript values and append an event to the
// `events` array index.js passed in, which index.js drains once the method
// has returned. So a listener may call any method of its node, which a C
// callback may not. The one exception is the optional clock function, which
// is called directly (it has to return a value).
//
// The wakeup callback runs on whatever thread called parley_node_post. It
// signals a thread-safe function (Napi::TypedThreadSafeFunction), whose call
// on the JavaScript thread invokes index.js's `onWakeup`, which runs the
// posted functions. Signals are coalesced: one is in flight at a time.
//
// Lifetime. close() (or the garbage collector, for a NodeWrap never closed)
// destroys the node, which frees every callback's user data and drops what
// was posted and not run. The thread-safe function is released then; a
// wakeup already queued finds its owner gone and does nothing.
//
// Teardown (process exit, a worker ending, worker.terminate() included). A
// node still open then is destroyed by an environment cleanup hook, the
// same way: it stops accepting posts (other threads get PARLEY_ERR_CLOSED),
// drops what is queued, unregisters and releases the thread-safe function;
// only then does Node finalize the thread-safe function and the objects.
// A server started later is stopped (its threads joined) before that, by
// its own hook: hooks run in reverse order of registration.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>

#include "common.hpp"

namespace parley::addon {

class NodeWrap;

// Context of the wakeup thread-safe function; deleted by its finalizer, so
// it outlives every queued call.
struct Waker {
  NodeWrap* owner = nullptr;         // JavaScript thread only; null once closed
  std::atomic<bool> pending{false};  // a signal is in flight
};

// The thread-safe function's call, on the JavaScript thread (env null while
// the environment is torn down).
void call_wakeup(Napi::Env env, Napi::Function, Waker* waker, void*);

class NodeWrap : public Napi::ObjectWrap<NodeWrap> {
 public:
  static Napi::Function define(Napi::Env env);

  // new NodeWrap(store, options, events, onWakeup)
  explicit NodeWrap(const Napi::CallbackInfo& info);
  ~NodeWrap() override;
  NodeWrap(const NodeWrap&) = delete;
  NodeWrap& operator=(const NodeWrap&) = delete;

  // The handle, for the test helper that posts from another thread; null
  // once closed.
  parley_node* handle() const { return node_; }

  // Called by the wakeup thread-safe function on the JavaScript thread.
  void on_wakeup(Napi::Env env);
  // The thread-safe function was finalized while the node lives (the
  // environment is being torn down): stop using it.
  void on_wakeup_finalized();

 private:
  using WakeupFn = Napi::TypedThreadSafeFunction<Waker, void, &call_wakeup>;
  struct WakeupData;
  struct JsPost;

  bool open(Napi::Env env);
  bool setup(Napi::Env env, const Napi::Object& options, parley_store* store);
  bool register_callbacks(Napi::Env env);
  bool register_wakeup(Napi::Env env);
  void push_event(Napi::Env env, std::initializer_list<napi_value> items);
  void destroy();
  static void cleanup(void* self);  // the environment cleanup hook

  Napi::Value start(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);
  Napi::Value closed(const Napi::CallbackInfo& info);
  Napi::Value session_open(const Napi::CallbackInfo& info);
  Napi::Value session_close(const Napi::CallbackInfo& info);
  Napi::Value client_request(const Napi::CallbackInfo& info);
  Napi::Value session_drained(const Napi::CallbackInfo& info);
  Napi::Value peer_batch(const Napi::CallbackInfo& info);
  Napi::Value peer_result(const Napi::CallbackInfo& info);
  Napi::Value timer_fired(const Napi::CallbackInfo& info);
  Napi::Value flush(const Napi::CallbackInfo& info);
  Napi::Value member_removed(const Napi::CallbackInfo& info);
  Napi::Value record_membership(const Napi::CallbackInfo& info);
  Napi::Value record_system(const Napi::CallbackInfo& info);
  Napi::Value session_count(const Napi::CallbackInfo& info);
  Napi::Value post(const Napi::CallbackInfo& info);
  Napi::Value run_posted(const Napi::CallbackInfo& info);

  // The C callbacks; user_data is the NodeWrap.
  static void on_deliver(void* self, uint64_t session, const parley_bytes* frames, size_t count);
  static void on_close_session(void* self, uint64_t session, int code, const char* message);
  static void on_send_batch(void* self, const char* node_id, uint64_t call_id, const void* data, size_t size);
  static void on_notify(void* self, const parley_notification* n);
  static void on_timer(void* self, int64_t at_ms);
  static int64_t on_clock(void* self);
  static void on_post(parley_node* node, void* item);
  static void free_post(void* item);
  static void on_wakeup_signal(void* data);
  static void free_wakeup(void* data);

  parley_node* node_ = nullptr;
  Napi::Env env_;
  bool json_ = true;                   // frames are JSON text: deliver strings
  Napi::ObjectReference events_;       // weak: index.js keeps the array alive
  Napi::FunctionReference on_wakeup_;  // weak, likewise
  Napi::FunctionReference clock_;      // strong while the node lives
  int64_t last_clock_ = 0;
  Waker* waker_ = nullptr;  // owned by wakeup_'s finalizer
  WakeupFn wakeup_;
  bool wakeup_alive_ = false;  // wakeup_ created and not finalized
  int64_t js_posts_ = 0;       // posted from JavaScript and not yet freed
  bool closing_ = false;
  bool hooked_ = false;  // the cleanup hook is registered (while the node is open)
};

// testing.postFromThread(node, count): posts `count` native functions to the
// node from a thread of the libuv pool; resolves {posted, refused}.
Napi::Value post_from_thread(const Napi::CallbackInfo& info);
// testing.threadPosts(): {ran, freed} over every postFromThread so far.
Napi::Value thread_posts(const Napi::CallbackInfo& info);

}  // namespace parley::addon
