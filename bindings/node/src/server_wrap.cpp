#include "server_wrap.hpp"

#include <string>
#include <utility>
#include <vector>

namespace parley::addon {

namespace {

// A C API outcome carried from the pool thread to the JavaScript thread.
struct Outcome {
  int code = PARLEY_OK;
  std::string message;

  // Records a failure of `rc` (message from `handle`, or the thread's).
  bool ok(int rc, const void* handle) {
    if (rc == PARLEY_OK) return true;
    code = rc;
    message = parley_errmsg(handle);
    return false;
  }
};

// Owns the server it started until a ServerWrap takes it: one that nobody
// took (a failure after the start, the environment going away) is stopped
// and released with the worker.
class StartWorker final : public Napi::AsyncWorker {
 public:
  StartWorker(Napi::Env env, std::vector<std::pair<std::string, std::pair<bool, std::string>>> options)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), options_(std::move(options)) {}
  ~StartWorker() override { parley_server_destroy(server_); }  // NULL: a no-op
  StartWorker(const StartWorker&) = delete;
  StartWorker& operator=(const StartWorker&) = delete;
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    parley_server_options* o = nullptr;
    if (!outcome_.ok(parley_server_options_create(&o), nullptr)) return;
    for (const auto& [name, value] : options_) {
      const char* v = value.first ? value.second.c_str() : nullptr;
      if (!outcome_.ok(parley_server_options_set(o, name.c_str(), v), o)) break;
    }
    if (outcome_.code == PARLEY_OK && outcome_.ok(parley_server_start(o, &server_), nullptr) &&
        !outcome_.ok(parley_server_port(server_, &port_), server_)) {
      parley_server_destroy(server_);
      server_ = nullptr;
    }
    parley_server_options_destroy(o);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!can_call_js(env)) return;  // the environment is going away: the destructor stops it
    if (outcome_.code != PARLEY_OK) {
      reject(outcome_.code, outcome_.message);
      return;
    }
    // The ServerWrap takes the handle out of server_ once it cannot fail;
    // whatever is left there when this worker is deleted, it stops.
    napi_value args[2] = {Napi::External<parley_server*>::New(env, &server_), Napi::Number::New(env, port_)};
    napi_value server = nullptr;
    if (napi_new_instance(env, addon_data(env).server_class.Value(), 2, args, &server) != napi_ok) {
      if (napi_value exception = take_exception(env)) deferred_.Reject(Napi::Value(env, exception));
      return;
    }
    deferred_.Resolve(Napi::Value(env, server));
  }
  void OnError(const Napi::Error& e) override {
    if (can_call_js(Env())) deferred_.Reject(e.Value());
  }

 private:
  void reject(int code, const std::string& message) {
    Napi::Env env = Env();
    if (napi_value error = make_error(env, code, message)) deferred_.Reject(Napi::Value(env, error));
  }

  Napi::Promise::Deferred deferred_;
  std::vector<std::pair<std::string, std::pair<bool, std::string>>> options_;
  Outcome outcome_;
  parley_server* server_ = nullptr;
  uint16_t port_ = 0;
};

class StopWorker final : public Napi::AsyncWorker {
 public:
  StopWorker(Napi::Env env, parley_server* server)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), server_(server) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    outcome_.ok(parley_server_stop(server_), server_);
    parley_server_destroy(server_);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!can_call_js(env)) return;
    if (outcome_.code == PARLEY_OK) {
      deferred_.Resolve(env.Undefined());
      return;
    }
    if (napi_value error = make_error(env, outcome_.code, outcome_.message))
      deferred_.Reject(Napi::Value(env, error));
  }
  void OnError(const Napi::Error& e) override {
    if (can_call_js(Env())) deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  parley_server* server_;
  Outcome outcome_;
};

}  // namespace

Napi::Function ServerWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeServer",
                     {
                         member_getter<ServerWrap, &ServerWrap::port>("port"),
                         member_getter<ServerWrap, &ServerWrap::closed>("closed"),
                         member_method<ServerWrap, &ServerWrap::close>("close"),
                     });
}

ServerWrap::ServerWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ServerWrap>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsNumber()) {
    throw_type_error(env, "NativeServer is made by startServer()");
    return;
  }
  parley_server** slot = info[0].As<Napi::External<parley_server*>>().Data();  // the StartWorker's
  if (napi_add_env_cleanup_hook(env_, &ServerWrap::cleanup, this) != napi_ok) {
    throw_error(env, PARLEY_ERR_INTERNAL, "cannot register the server's environment cleanup hook");
    return;  // the caller still owns the handle
  }
  // A running server is never garbage-collected (like a listening
  // net.Server): strong until close() or the environment's teardown.
  if (napi_reference_ref(env_, Napi::ObjectWrap<ServerWrap>::operator napi_ref(), nullptr) != napi_ok) {
    napi_remove_env_cleanup_hook(env_, &ServerWrap::cleanup, this);
    throw_error(env, PARLEY_ERR_INTERNAL, "cannot keep the server object alive");
    return;
  }
  port_ = static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value());
  server_ = std::exchange(*slot, nullptr);  // ours now: nothing can fail any more
  pinned_ = true;
}

ServerWrap::~ServerWrap() {
  // Only reached with the server gone (closed, or stopped by the cleanup
  // hook before the environment's finalizers run): a running one is pinned.
  // Should one get here, it is stopped, not leaked.
  parley_server* server = forget();
  parley_server_destroy(server);  // NULL: a no-op
}

void ServerWrap::cleanup(void* self) {
  // The environment is being torn down (process exit, a worker ending) and
  // the server is still running: stop it and join its threads now, before
  // the environment's finalizers run and the addon (with the server's code)
  // may be unloaded. The hook is spent: nothing to remove. The pin is left
  // to the teardown, which finalizes every object.
  auto* s = static_cast<ServerWrap*>(self);
  parley_server* server = std::exchange(s->server_, nullptr);
  parley_server_destroy(server);
}

parley_server* ServerWrap::forget() {
  parley_server* server = std::exchange(server_, nullptr);
  if (server != nullptr) napi_remove_env_cleanup_hook(env_, &ServerWrap::cleanup, this);
  return server;
}

Napi::Value ServerWrap::port(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), port_);
}

Napi::Value ServerWrap::closed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), server_ == nullptr);
}

Napi::Value ServerWrap::close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (server_ == nullptr) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  auto* worker = new StopWorker(env, forget());
  if (pinned_) {  // closing: the object may be collected once nobody holds it
    pinned_ = false;
    napi_reference_unref(env, Napi::ObjectWrap<ServerWrap>::operator napi_ref(), nullptr);
  }
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Napi::Value start_server(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) {
    throw_type_error(env, "startServer([[name, value], ...])");
    return env.Undefined();
  }
  Napi::Array list = info[0].As<Napi::Array>();
  std::vector<std::pair<std::string, std::pair<bool, std::string>>> options;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value item = list.Get(i);
    if (!item.IsArray() || item.As<Napi::Array>().Length() != 2) {
      throw_type_error(env, "each server option is a [name, value] pair");
      return env.Undefined();
    }
    Napi::Array pair = item.As<Napi::Array>();
    std::string name;
    std::string value;
    if (!get_string(env, pair.Get(0u), "option name", &name)) return env.Undefined();
    const bool has_value = !pair.Get(1u).IsNull() && !pair.Get(1u).IsUndefined();
    if (has_value && !get_string(env, pair.Get(1u), "option value", &value)) return env.Undefined();
    options.emplace_back(std::move(name), std::make_pair(has_value, std::move(value)));
  }
  auto* worker = new StartWorker(env, std::move(options));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace parley::addon
