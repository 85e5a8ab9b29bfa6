// What the addon's classes share: the per-environment data (the
// constructors and the JavaScript ParleyError class), turning a C API result
// into a thrown ParleyError, and argument conversions.
//
// The addon is built without C++ exceptions in node-addon-api
// (NAPI_DISABLE_CPP_EXCEPTIONS): a failure leaves a pending JavaScript
// exception and the function returns at once. Nothing may throw across the
// C API's callbacks, so this is also what keeps them exception-free.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "parley/parley.h"

namespace parley::addon {

// Per environment (main thread or worker): set once by the module's init.
struct AddonData {
  Napi::FunctionReference error_class;  // index.js's ParleyError(code, message)
  Napi::FunctionReference node_class;
  Napi::FunctionReference store_class;
  Napi::FunctionReference server_class;
};

AddonData& addon_data(Napi::Env env);

// Throws ParleyError(code, message) unless an exception is already pending.
void throw_error(Napi::Env env, int code, const std::string& message);
// Throws a TypeError unless an exception is already pending.
void throw_type_error(Napi::Env env, const std::string& message);

// rc is the result of a C API call on `handle` (NULL: a call whose message is
// kept per thread). On failure throws ParleyError(rc, parley_errmsg(handle))
// and returns false.
bool check(Napi::Env env, int rc, const void* handle);

// Argument conversions; on a wrong type they throw a TypeError naming `what`
// and return false. A string with a NUL character (which C would cut)
// throws ParleyError invalid_argument.
bool get_string(Napi::Env env, const Napi::Value& v, const char* what, std::string* out);
// A non-negative integer Number (at most 2^53 - 1) or a BigInt that fits 64 bits.
bool get_u64(Napi::Env env, const Napi::Value& v, const char* what, uint64_t* out);
bool get_i64(Napi::Env env, const Napi::Value& v, const char* what, int64_t* out);
bool get_double(Napi::Env env, const Napi::Value& v, const char* what, double* out);
// A Buffer, any typed array or DataView, or an ArrayBuffer: its bytes (valid
// while `v` is alive and not detached).
bool get_bytes(Napi::Env env, const Napi::Value& v, const char* what, const void** data, size_t* size);

// A Number when exact (below 2^53), else a BigInt.
Napi::Value from_u64(Napi::Env env, uint64_t value);

// Whether JavaScript can run in `env` now: false while a worker is being
// terminated or the environment torn down. Checked with the raw C API
// before work that completes asynchronously touches JavaScript, because
// node-addon-api's wrappers abort the process when a call fails then.
bool can_call_js(napi_env env);

// ---- calling JavaScript ----------------------------------------------------
//
// Raw Node-API instead of node-addon-api's Function::Call and
// FunctionReference::New: on a failure those wrap the pending exception in
// a Napi::Error, which is a fatal error (abort: "Error::Error
// napi_define_properties") when that exception is a worker's termination,
// as it is when worker.terminate() lands while the JavaScript called runs.

// The exception the last call left pending, taken; null if none, or if it
// is no exception to pass on (JavaScript cannot run any more: a
// termination).
napi_value take_exception(napi_env env);
// fn.call(recv, ...args); null if it threw (the exception is thrown again
// and propagates, as with node-addon-api) or JavaScript cannot run.
napi_value call_function(napi_env env, napi_value recv, napi_value fn, size_t argc, const napi_value* argv);
// new ParleyError(code, message) (index.js's class; an Error before
// setErrorClass), or what its constructor threw; null when JavaScript
// cannot run.
napi_value make_error(napi_env env, int code, const std::string& message);

// Native objects the library owns on our behalf (callback and post user
// data): counted so that the tests can check that every one is freed.
extern std::atomic<int64_t> g_live_objects;

// ---- class members, reached only through a live object -----------------
//
// node-addon-api 5's InstanceMethod and InstanceAccessor call the member on
// whatever ObjectWrap::Unwrap returns, and that is null when napi_unwrap
// fails: for a `this` that is none of our objects, and at any moment once
// the environment can no longer run JavaScript. worker.terminate() flips
// that from the parent thread while the worker's JavaScript may be calling
// in (the wakeups of posts from native threads made it frequent: a SIGSEGV
// in NodeWrap::closed with this == NULL). The classes define their members
// with member_method / member_getter instead: no object, no call (and a
// TypeError while JavaScript can still run).

template <typename T>
using Member = Napi::Value (T::*)(const Napi::CallbackInfo&);

// The object behind the call's `this`, or null (after throwing a TypeError
// if JavaScript can still run).
template <typename T>
T* unwrap_this(napi_env env, napi_callback_info info) {
  napi_value self = nullptr;
  void* instance = nullptr;
  if (napi_get_cb_info(env, info, nullptr, nullptr, &self, nullptr) == napi_ok && self != nullptr &&
      napi_unwrap(env, self, &instance) == napi_ok && instance != nullptr)
    return static_cast<T*>(instance);
  bool pending = false;
  if (can_call_js(env) && napi_is_exception_pending(env, &pending) == napi_ok && !pending)
    napi_throw_type_error(env, nullptr, "Illegal invocation: `this` is not a parley native object");
  return nullptr;
}

template <typename T, Member<T> M>
napi_value call_member(napi_env env, napi_callback_info info) {
  T* self = unwrap_this<T>(env, info);
  if (self == nullptr) return nullptr;
  const Napi::CallbackInfo ci(env, info);
  return (self->*M)(ci);
}

// A method, or with `getter` a read-only accessor.
template <typename T, Member<T> M>
Napi::ClassPropertyDescriptor<T> member_property(const char* name, bool getter) {
  napi_property_descriptor d{};
  d.utf8name = name;
  (getter ? d.getter : d.method) = &call_member<T, M>;
  d.attributes = napi_default;
  return d;
}
template <typename T, Member<T> M>
Napi::ClassPropertyDescriptor<T> member_method(const char* name) {
  return member_property<T, M>(name, false);
}
template <typename T, Member<T> M>
Napi::ClassPropertyDescriptor<T> member_getter(const char* name) {
  return member_property<T, M>(name, true);
}

}  // namespace parley::addon
