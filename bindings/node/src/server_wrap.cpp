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

class StartWorker final : public Napi::AsyncWorker {
 public:
  StartWorker(Napi::Env env, std::vector<std::pair<std::string, std::pair<bool, std::string>>> options)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), options_(std::move(options)) {}
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
    if (!can_call_js(env)) {  // the environment is going away: nobody will stop it
      parley_server_destroy(server_);
      return;
    }
    if (outcome_.code != PARLEY_OK) {
      reject(outcome_.code, outcome_.message);
      return;
    }
    Napi::Object server = addon_data(env).server_class.New(
        {Napi::External<parley_server>::New(env, server_), Napi::Number::New(env, port_)});
    if (env.IsExceptionPending()) {
      parley_server_destroy(server_);
      deferred_.Reject(env.GetAndClearPendingException().Value());
      return;
    }
    deferred_.Resolve(server);
  }
  void OnError(const Napi::Error& e) override {
    parley_server_destroy(server_);
    if (can_call_js(Env())) deferred_.Reject(e.Value());
  }

 private:
  void reject(int code, const std::string& message) {
    Napi::Env env = Env();
    Napi::Value error =
        addon_data(env).error_class.New({Napi::Number::New(env, code), Napi::String::New(env, message)});
    if (env.IsExceptionPending()) error = env.GetAndClearPendingException().Value();
    deferred_.Reject(error);
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
    Napi::Value error = addon_data(env).error_class.New(
        {Napi::Number::New(env, outcome_.code), Napi::String::New(env, outcome_.message)});
    if (env.IsExceptionPending()) error = env.GetAndClearPendingException().Value();
    deferred_.Reject(error);
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
                         InstanceAccessor("port", &ServerWrap::port, nullptr),
                         InstanceAccessor("closed", &ServerWrap::closed, nullptr),
                         InstanceMethod("close", &ServerWrap::close),
                     });
}

ServerWrap::ServerWrap(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ServerWrap>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsNumber()) {
    throw_type_error(env, "NativeServer is made by startServer()");
    return;
  }
  server_ = info[0].As<Napi::External<parley_server>>().Data();
  port_ = static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value());
  napi_add_env_cleanup_hook(env_, &ServerWrap::cleanup, this);
}

ServerWrap::~ServerWrap() {
  if (server_ == nullptr) return;
  forget();
  parley_server_destroy(server_);  // stops it first (blocks: a garbage-collected running server)
}

void ServerWrap::cleanup(void* self) {
  auto* s = static_cast<ServerWrap*>(self);
  parley_server* server = s->server_;
  s->server_ = nullptr;  // the hook is spent: nothing to remove
  parley_server_destroy(server);
}

void ServerWrap::forget() {
  napi_remove_env_cleanup_hook(env_, &ServerWrap::cleanup, this);
  server_ = nullptr;
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
  auto* worker = new StopWorker(env, server_);
  forget();
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
